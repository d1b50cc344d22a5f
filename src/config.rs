//! `driftwatch serve` configuration: layered from built-in defaults, a TOML file, `DRIFTWATCH__`
//! environment variables (`DRIFTWATCH__SERVER__LISTEN=0.0.0.0:8080`, double underscores separate
//! levels) and command-line flags, in that order. Unknown keys are rejected and cross-field rules
//! are checked once at load, with an error that names the key. Every key is documented in
//! `docs/configuration.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use analyzer::ReferenceProfile;
use analyzer::stream::WindowSettings;
use anyhow::Context;
use collector::batcher::BatchConfig;
use collector::http::HttpIngestConfig;
use collector::kafka::KafkaConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP server (ingest, metrics, webhook, status page).
    pub server: ServerConfig,
    /// Monitored models and their reference profiles.
    pub models: Vec<ModelConfig>,
    /// Which models without a profile may create state and series.
    pub admission: AdmissionConfig,
    /// Event-time windows and drift settings.
    pub windows: WindowSettings,
    /// Batching between the sources and the analyzer.
    pub batch: BatchConfig,
    /// HTTP ingest (`POST /v1/events`, `POST /v1/cloudevents`).
    pub http: HttpConfig,
    /// The Kafka source (absent: no Kafka).
    pub kafka: Option<KafkaConfig>,
    /// Checkpoints of the window state (absent: no checkpoint, offsets are committed as soon as
    /// events are absorbed in memory).
    pub checkpoint: Option<CheckpointConfig>,
    /// Metrics exporter settings.
    pub metrics: alerting::exporter::MetricsConfig,
    /// Alert rules: the built-in ones and your own.
    pub rules: alerting::rules::RulesConfig,
    /// Where alerts are sent (absent: no Alertmanager).
    pub alertmanager: Option<alerting::alertmanager::AlertmanagerConfig>,
    /// The Alertmanager webhook receiver (`POST /v1/alertmanager`).
    pub webhook: alerting::webhook::WebhookConfig,
}

/// Which models may create state and series (the `[admission]` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Models without a profile in `[[models]]` that are admitted on their first event (their
    /// features inferred), default 100; events of any further model are refused with the reason
    /// `unknown_model` (HTTP 400, Kafka dead letter) and counted. 0: configured models only.
    pub max_discovered_models: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_discovered_models: collector::batcher::DEFAULT_MAX_DISCOVERED_MODELS,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Longest time a graceful shutdown waits for sources to drain and the last checkpoint
    /// (default `30s`).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Closed-window reports kept for `/api/windows`, the status page and the checkpoint
    /// (default 500).
    pub history: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_timeout: Duration::from_secs(30),
            history: 500,
        }
    }
}

/// One monitored model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model name, as in the events' `model` field.
    pub name: String,
    /// Its reference profile (a file written by `driftwatch profile`).
    pub profile: PathBuf,
}

/// HTTP ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Accept events over HTTP (default true).
    pub enabled: bool,
    /// Body limit, token, CloudEvents pairing and mapping.
    #[serde(flatten)]
    pub ingest: HttpIngestConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ingest: HttpIngestConfig::default(),
        }
    }
}

/// Checkpoint settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory of the checkpoint (created if missing).
    pub dir: PathBuf,
    /// How often the state is checkpointed (default `2s`); offsets are committed after each.
    #[serde(default = "default_checkpoint_interval", with = "humantime_serde")]
    pub interval: Duration,
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(2)
}

/// Loads the configuration: defaults, then `file` (if any), then `DRIFTWATCH__` variables, then
/// `overrides` (flags, as dotted keys).
///
/// # Errors
/// A message naming the file and key for unknown keys, wrong types and broken cross-field rules.
pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = file {
        if !f.exists() {
            anyhow::bail!("config file {} does not exist", f.display());
        }
        figment = figment.merge(Toml::file_exact(f));
    }
    figment = figment.merge(Env::prefixed("DRIFTWATCH__").split("__").lowercase(true));
    for (key, value) in overrides {
        figment = figment.merge(Serialized::global(key, value));
    }
    let config: Config = figment.extract().map_err(|e| {
        let mut messages = Vec::new();
        for err in e {
            let key = if err.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", err.path.join("."))
            };
            let source = err
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            messages.push(format!("{key}{}{source}", err.kind));
        }
        anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
    })?;
    config.validate()?;
    Ok(config)
}

impl Config {
    /// Cross-field rules, each naming its key.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.windows.size.is_zero() {
            anyhow::bail!("invalid configuration: `windows.size` must be longer than zero");
        }
        if let Err(message) = self.windows.drift.check_verdict_thresholds() {
            anyhow::bail!("invalid configuration: `windows.drift.numeric_verdict`: {message}");
        }
        if self.batch.max_events == 0 {
            anyhow::bail!("invalid configuration: `batch.max_events` must be at least 1");
        }
        if self.batch.channel_capacity == 0 {
            anyhow::bail!("invalid configuration: `batch.channel_capacity` must be at least 1");
        }
        // Credentials are resolved (files read, variables looked up) here too, so that
        // `check-config` refuses an empty token or an unreadable secret file.
        if self.http.enabled {
            self.http.ingest.credentials()?;
        }
        collector::auth::Credentials::resolve(&self.webhook.auth, "webhook.auth")?;
        if !self.http.enabled && self.kafka.is_none() {
            anyhow::bail!(
                "invalid configuration: no source: enable `http.enabled` or configure `[kafka]`"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.name.is_empty() {
                anyhow::bail!("invalid configuration: `models[{i}].name` is empty");
            }
            if !seen.insert(&m.name) {
                anyhow::bail!(
                    "invalid configuration: `models[{i}].name`: model `{}` is listed twice",
                    m.name
                );
            }
        }
        for (i, m) in self.windows.custom_metrics.iter().enumerate() {
            if m.name.is_empty() || m.sql.trim().is_empty() {
                anyhow::bail!(
                    "invalid configuration: `windows.custom_metrics[{i}]` needs a name and a query"
                );
            }
        }
        if let Some(k) = &self.kafka {
            k.validate()
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        }
        Ok(())
    }

    /// Loads every model's reference profile.
    ///
    /// # Errors
    /// The profile file and model that failed.
    pub fn load_profiles(&self) -> anyhow::Result<HashMap<String, Arc<ReferenceProfile>>> {
        let mut out = HashMap::new();
        for m in &self.models {
            let p = ReferenceProfile::load(&m.profile)
                .with_context(|| format!("`models` entry `{}`: cannot load its profile", m.name))?;
            out.insert(m.name.clone(), Arc::new(p));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("driftwatch.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_file_env_and_flags_layer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "[server]\nlisten = \"127.0.0.1:9000\"\n[windows]\nsize = \"30s\"\n",
        );
        let c = load(Some(&file), &[]).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.windows.size, Duration::from_secs(30));
        assert_eq!(c.batch.max_events, 4096);
        let c = load(Some(&file), &[("server.listen", "127.0.0.1:9100".into())]).unwrap();
        assert_eq!(c.server.listen.port(), 9100);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "[windows]\nsise = \"30s\"\n");
        let err = load(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("sise"), "{err}");
        assert!(err.contains("windows"), "{err}");
    }

    #[test]
    fn cross_field_rules_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "[http]\nenabled = false\n");
        let err = load(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("no source"), "{err}");
        let file = write(
            dir.path(),
            "[[models]]\nname = \"m\"\nprofile = \"a\"\n[[models]]\nname = \"m\"\nprofile = \"b\"\n",
        );
        let err = load(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("models[1].name"), "{err}");
    }

    /// The value at `path` (dotted; a `[[array]]` step takes its first element) of `config`.
    fn at<'a>(config: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
        path.split('.').try_fold(config, |v, step| {
            let v = v.get(step)?;
            Some(v.as_array().and_then(|a| a.first()).unwrap_or(v))
        })
    }

    /// Whether a documented default (a TOML literal) equals the code's value: durations by
    /// their length (`"24h"` and `"1day"` are equal), numbers by value.
    fn same(doc: &serde_json::Value, code: &serde_json::Value) -> bool {
        match (doc, code) {
            (serde_json::Value::String(a), serde_json::Value::String(b)) => {
                a == b
                    || matches!(
                        (humantime::parse_duration(a), humantime::parse_duration(b)),
                        (Ok(x), Ok(y)) if x == y
                    )
            }
            (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
                a.as_f64() == b.as_f64()
            }
            // `{}`: an empty table, that is the table's own defaults (documented in its section).
            (serde_json::Value::Object(a), serde_json::Value::Object(_)) if a.is_empty() => true,
            _ => doc == code,
        }
    }

    /// Issue "One spine", item 8: every config default was written three times (function, doc
    /// comment, docs/configuration.md). This fails when the reference and the code disagree: a
    /// documented key the code lacks, a key of a documented section the reference lacks, or a
    /// documented literal default that is not the code's.
    #[test]
    fn docs_configuration_md_matches_the_code() {
        let docs = include_str!("../docs/configuration.md");
        // The optional sections and `[[kafka.topics]]` with only their required keys.
        let config: Config = toml::from_str(
            "[alertmanager]\nurl = \"http://127.0.0.1:9093\"\n\
             [checkpoint]\ndir = \"ckpt\"\n\
             [kafka]\nbrokers = \"127.0.0.1:9092\"\n[[kafka.topics]]\nname = \"predictions\"\n",
        )
        .unwrap();
        let code = serde_json::to_value(&config).unwrap();
        let mut section: Option<String> = None;
        let mut documented: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let (mut checked, mut problems) = (0, Vec::new());
        for line in docs.lines() {
            if line.starts_with('#') {
                // `## `[server]``, `### `[[kafka.topics]]``, `## Auth tables (`[http.auth]`, ...)`.
                section = line
                    .split('`')
                    .nth(1)
                    .filter(|s| s.starts_with('['))
                    .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string())
                    .filter(|s| at(&code, s).is_some_and(serde_json::Value::is_object));
                continue;
            }
            let Some(path) = &section else { continue };
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 5 || !cells[1].starts_with('`') {
                continue;
            }
            let key = cells[1].trim_matches('`');
            documented
                .entry(path.clone())
                .or_default()
                .push(key.to_string());
            let value = at(&code, path).and_then(|s| s.get(key));
            let Some(value) = value else {
                problems.push(format!("`{path}.{key}` is documented but not in the code"));
                continue;
            };
            let default = cells[3];
            if default.starts_with("none") {
                checked += 1;
                if !value.is_null() {
                    problems.push(format!("`{path}.{key}`: documented none, code {value}"));
                }
                continue;
            }
            let Some(literal) = default.split('`').nth(1) else {
                continue;
            };
            let Ok(parsed) = toml::from_str::<toml::Table>(&format!("v = {literal}")) else {
                continue;
            };
            let doc = serde_json::to_value(&parsed["v"]).unwrap();
            checked += 1;
            if !same(&doc, value) {
                problems.push(format!("`{path}.{key}`: documented {doc}, code {value}"));
            }
        }
        for (path, keys) in &documented {
            if let Some(serde_json::Value::Object(fields)) = at(&code, path) {
                for field in fields.keys().filter(|f| !keys.contains(f)) {
                    problems.push(format!(
                        "`{path}.{field}` is in the code but not documented"
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
        eprintln!("{checked} documented defaults checked against the code");
        assert!(checked >= 40, "only {checked} defaults checked");
    }

    /// Issue 19, item 9: the configuration is one of the decoders a user (or a broken
    /// ConfigMap) feeds driftwatch. Mutated configurations never panic `load` or the rule
    /// engine `check-config` builds from them; every refusal says it is the configuration and
    /// names the key or the file.
    mod fuzz {
        use std::io::Write as _;

        use proptest::prelude::*;
        use test_support::fuzz::{cases, edits, mutate};

        /// Every section, with values that are valid.
        const SEED: &str = "[server]\nlisten = \"127.0.0.1:8080\"\nshutdown_timeout = \"30s\"\nhistory = 500\n\
            [[models]]\nname = \"car-loan\"\nprofile = \"/nonexistent/car-loan.profile.json\"\n\
            [windows]\nsize = \"1m\"\nallowed_lateness = \"10s\"\nmax_future_skew = \"1h\"\n\
            [windows.drift]\nnumeric_verdict = [\"wasserstein_normed\"]\nthresholds = { psi = 0.2 }\nmin_samples = 500\n\
            [batch]\nmax_events = 4096\nmax_wait = \"500ms\"\nchannel_capacity = 16\n\
            [http]\nenabled = true\nmax_body_bytes = 1024\ndurable_ack = true\n\
            [http.auth]\nbearer_token = \"s3cret\"\n\
            [admission]\nmax_discovered_models = 10\n\
            [kafka]\nbrokers = \"127.0.0.1:9092\"\n[[kafka.topics]]\nname = \"predictions\"\n\
            [checkpoint]\ndir = \"ckpt\"\ninterval = \"2s\"\n\
            [alertmanager]\nurl = \"http://127.0.0.1:9093\"\n";

        #[test]
        fn the_seed_is_valid() {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(SEED.as_bytes()).unwrap();
            let config = super::super::load(Some(f.path()), &[]).unwrap();
            assert_eq!(config.batch.max_events, 4096);
            assert_eq!(config.admission.max_discovered_models, 10);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

            #[test]
            fn mutated_configurations_are_refused_by_name_or_loaded(e in edits(1)) {
                let bytes = mutate(SEED.as_bytes(), &e);
                let mut f = tempfile::NamedTempFile::new().unwrap();
                f.write_all(&bytes).unwrap();
                match super::super::load(Some(f.path()), &[]) {
                    Ok(config) => {
                        // What `check-config` and `serve` build from it must not panic either.
                        let _ = alerting::rules::RuleEngine::new(&config.rules);
                        let _ = config.http.ingest.credentials();
                    }
                    Err(err) => {
                        let message = format!("{err:#}");
                        prop_assert!(
                            message.starts_with("invalid configuration")
                                || message.contains('`')
                                || message.contains(&f.path().display().to_string()),
                            "a refusal that names nothing: {message}"
                        );
                    }
                }
            }
        }
    }
}
