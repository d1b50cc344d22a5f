//! `driftwatch replay`: a prediction log to Kafka or HTTP, as events.

use std::process::ExitCode;

use anyhow::Context;
use collector::replay::{self, ReplayOptions};

use crate::cli::{GlobalArgs, ReplayArgs};
use crate::progress::Bar;

/// Runs `driftwatch replay`.
pub fn run(args: &ReplayArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let target: replay::Target = args
        .to
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--to {e}"))?;
    let mut options = ReplayOptions::new(&args.input, &args.model);
    options.model_version = args.model_version.clone();
    options.variant = args.variant.into();
    options.timestamp_column = args.timestamp_column.clone();
    options.timestamp_format = args.timestamp_format.parse().unwrap_or_default();
    options.id_column = args.id_column.clone();
    options.prediction_column = args.prediction_column.clone();
    options.confidence_column = args.confidence_column.clone();
    options.probability_column = args.probability_column.clone();
    options.latency_column = args.latency_column.clone();
    options.synthetic_latency_ms = args.synthetic_latency_ms;
    options.features = args.features.clone();
    options.exclude = args.exclude.clone();
    options.speedup = args.speedup;
    options.no_wait = args.no_wait;
    options.rate = args.rate;
    options.skip = args.skip;
    options.limit = args.limit;
    if let Some(file) = &args.kafka_options_file {
        options.kafka_client = crate::cli::read_kafka_options_file(file)?
            .into_iter()
            .collect();
    }
    options
        .kafka_client
        .extend(args.kafka_options.iter().cloned());
    if !options.kafka_client.is_empty() && !matches!(target, replay::Target::Kafka { .. }) {
        anyhow::bail!(
            "--kafka-option applies only to a kafka:// target, not {} (so does --kafka-options-file)",
            args.to
        );
    }
    if options.speedup.is_some_and(|s| s.is_nan() || s <= 0.0) {
        anyhow::bail!("--speedup must be greater than 0");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let start = match &args.start_time {
        Some(t) => analyzer::time::TimestampFormat::Auto
            .parse_millis(t)
            .map_err(|e| anyhow::anyhow!("--start-time: {e}"))?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let events = replay::events_from_file(&options, start)?;
    let n = events.len();
    let bar = Bar::new(global.quiet);
    let summary = runtime.block_on(replay::send(events, &target, &options, &bar))?;
    eprintln!(
        "replayed {} of {n} events from {} to {} in {:.1} s ({:.0} events/s)",
        summary.sent,
        args.input.display(),
        args.to,
        summary.elapsed.as_secs_f64(),
        summary.sent as f64 / summary.elapsed.as_secs_f64().max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
