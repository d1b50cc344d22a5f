//! `driftwatch serve` and `driftwatch check-config`.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{CheckConfigArgs, GlobalArgs, ServeArgs};
use crate::config;

fn overrides(listen: Option<&std::net::SocketAddr>) -> Vec<(&'static str, String)> {
    listen
        .map(|l| vec![("server.listen", l.to_string())])
        .unwrap_or_default()
}

/// Runs `driftwatch serve` until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(args.config.as_deref(), &overrides(args.listen.as_ref()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(async move {
        let hooks = crate::serve::Hooks {
            reset_checkpoint: args.reset_checkpoint,
            ..crate::serve::Hooks::default()
        };
        let running = crate::serve::start(config, hooks).await?;
        eprintln!(
            "driftwatch listening on http://{} (status page /, metrics /metrics)",
            running.addr
        );
        running.wait().await
    });
    // Dropping a runtime waits for its blocking tasks without limit; a Kafka consumer whose
    // broker is gone can block for its session timeout in them. The service has already stopped
    // (within `server.shutdown_timeout`), so nothing left there is waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `driftwatch check-config`: loads and validates the configuration (and the profiles it
/// names) without starting anything.
pub fn check(args: &CheckConfigArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(args.config.as_deref(), &[])?;
    let profiles = config.load_profiles()?;
    alerting::rules::RuleEngine::new(&config.rules)
        .map_err(|e| anyhow::anyhow!("invalid configuration: `rules`: {e}"))?;
    println!(
        "configuration OK: listen {}, {} model(s) with profiles ({}), kafka {}, http ingest {}, checkpoint {}, alertmanager {}",
        config.server.listen,
        profiles.len(),
        config
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        config.kafka.as_ref().map_or("off".to_string(), |k| format!(
            "{} topic(s) at {}",
            k.topics.len(),
            k.brokers
        )),
        if config.http.enabled { "on" } else { "off" },
        config
            .checkpoint
            .as_ref()
            .map_or("off".to_string(), |c| c.dir.display().to_string()),
        config
            .alertmanager
            .as_ref()
            .map_or("off", |a| a.url.as_str()),
    );
    if args.print {
        println!(
            "{}",
            toml::to_string_pretty(&config).context("cannot print the configuration")?
        );
    }
    Ok(ExitCode::SUCCESS)
}
