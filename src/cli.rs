//! Command-line arguments (clap) and logging set-up.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// driftwatch watches machine-learning models in production: drift statistics (PSI, KL,
/// Jensen-Shannon, Hellinger, Kolmogorov-Smirnov, Wasserstein, chi-square) per model, version and
/// variant, over event-time windows or chunks of a prediction log, against a reference profile.
#[derive(Debug, Parser)]
#[command(name = "driftwatch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DRIFTWATCH_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `driftwatch=debug`).
    #[arg(long, global = true, default_value = "warn", env = "DRIFTWATCH_LOG")]
    pub log: String,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit a reference profile from a CSV or Parquet file and save it as JSON.
    ///
    /// Example: driftwatch profile --input data/car_loan/reference.csv --exclude repaid --out car_loan.profile.json
    Profile(ProfileArgs),
    /// Compare a prediction log with a reference, chunk by chunk, and print the drift per feature.
    ///
    /// Example: driftwatch analyze --reference data/car_loan/reference.csv --current data/car_loan/analysis.csv --chunk-size 5000
    Analyze(AnalyzeArgs),
    /// Run the service: Kafka and/or HTTP sources, streaming windows, /metrics, alerts.
    ///
    /// Example: driftwatch serve --config driftwatch.toml
    Serve(ServeArgs),
    /// Validate a configuration file (and the profiles it names) without starting anything.
    CheckConfig(CheckConfigArgs),
    /// The whole loop on the built-in car_loan data, on localhost: service, replay, drift,
    /// alerts, the retraining Job and a canary decision (dry run). No Kafka or cluster needed.
    Demo(DemoArgs),
    /// The Kubernetes controller: retraining Jobs and canary promotion on alerts; --dry-run
    /// prints what it would apply for monitors and triggers read from files.
    Controller(ControllerArgs),
    /// Print the ModelMonitor CustomResourceDefinition as YAML.
    Crdgen(CrdgenArgs),
    /// Send a prediction log (CSV or Parquet) as prediction events to Kafka or HTTP.
    ///
    /// Example: driftwatch replay --input data/car_loan/analysis.csv --model car-loan --to kafka://127.0.0.1:9092/predictions
    Replay(ReplayArgs),
}

/// Arguments of `driftwatch serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; see docs/configuration.md). Settings can also come from
    /// DRIFTWATCH__SECTION__KEY environment variables.
    #[arg(long, short, value_name = "FILE", env = "DRIFTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// When the checkpoint (`[checkpoint] dir`) cannot be read, set it aside (its manifest is
    /// renamed `manifest.json.discarded-<time>`) and resume from the offsets committed to Kafka,
    /// instead of refusing to start. Events absorbed after the last commit are counted again.
    #[arg(long)]
    pub reset_checkpoint: bool,
}

/// Arguments of `driftwatch demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the demo's HTTP server (status page, /metrics, ingest).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Wall time of one window (one chunk of 5,000 predictions), in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub window_ms: u64,
    /// Send as fast as possible instead of one window per --window-ms.
    #[arg(long)]
    pub fast: bool,
    /// Directory with the car_loan reference.csv and analysis.csv (default: the built-in data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Arguments of `driftwatch controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Print the Jobs and patches it would apply, touching no cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: YAML with ModelMonitor, SeldonDeployment and InferenceService objects.
    #[arg(long, value_name = "FILE", required_if_eq("dry_run", "true"))]
    pub input: Option<PathBuf>,
    /// With --dry-run: alert triggers (a JSON array, or one JSON object per line).
    #[arg(long, value_name = "FILE")]
    pub triggers: Option<PathBuf>,
    /// Namespace watched and acted in.
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    pub namespace: String,
    /// This replica's identity in the leader Lease (default: $POD_NAME).
    #[arg(long)]
    pub identity: Option<String>,
    /// Address of the Alertmanager webhook receiver (POST /v1/alertmanager) and of the
    /// controller's /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8081", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token POST /v1/alertmanager requires (a mounted Secret; give
    /// Alertmanager the same in its receiver's `http_config.authorization.credentials_file`).
    /// Without it the webhook is open: anyone who reaches it can trigger retraining.
    #[arg(long, value_name = "FILE", env = "DRIFTWATCH_WEBHOOK_TOKEN_FILE")]
    pub webhook_token_file: Option<PathBuf>,
    /// Base URL of the driftwatch service (`driftwatch serve`) whose windows measure canaries
    /// of monitors without `spec.canary.metricsSource.prometheus` (GET /api/canary/MODEL), e.g.
    /// http://driftwatch:8080. Without it such canaries hold (the source is down) instead of
    /// counting missing data against the canary.
    #[arg(long, value_name = "URL", env = "DRIFTWATCH_ANALYZER_URL")]
    pub analyzer_url: Option<String>,
}

/// Arguments of `driftwatch crdgen`.
#[derive(Debug, Args)]
pub struct CrdgenArgs {}

/// Arguments of `driftwatch check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Configuration file (TOML).
    #[arg(long, short, value_name = "FILE", env = "DRIFTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also print the effective configuration (defaults, file and environment merged).
    #[arg(long)]
    pub print: bool,
}

/// Arguments of `driftwatch replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The prediction log: CSV (with a header) or Parquet.
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to send: kafka://host:port/topic or http://host:port[/path] (default path /v1/events).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Model name of the events.
    #[arg(long)]
    pub model: String,
    /// Model version of the events.
    #[arg(long)]
    pub model_version: Option<String>,
    /// Variant of the events.
    #[arg(long, value_enum, default_value_t = VariantArg::Stable)]
    pub variant: VariantArg,
    /// Event-time column (default: `timestamp` when present, else the time of sending).
    #[arg(long, value_name = "COLUMN")]
    pub timestamp_column: Option<String>,
    /// How the timestamp column writes time (auto, epoch_ms, epoch_s, or a strftime pattern).
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    pub timestamp_format: String,
    /// Request-id column (default: `request_id` or `id` when present).
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,
    /// Prediction column (default: `prediction` or `y_pred` when present).
    #[arg(long, value_name = "COLUMN")]
    pub prediction_column: Option<String>,
    /// Confidence column, taken as is (default: `confidence` when present).
    #[arg(long, value_name = "COLUMN")]
    pub confidence_column: Option<String>,
    /// Positive-class probability of a binary classifier (default: `y_pred_proba` when present);
    /// the confidence is max(p, 1 - p).
    #[arg(long, value_name = "COLUMN")]
    pub probability_column: Option<String>,
    /// Latency column in milliseconds (default: `latency_ms` when present).
    #[arg(long, value_name = "COLUMN")]
    pub latency_column: Option<String>,
    /// Attach a synthetic latency with this mean (ms) to logs without one (demos, load tests).
    #[arg(long, value_name = "MS")]
    pub synthetic_latency_ms: Option<f64>,
    /// Feature columns (comma-separated; default: every other column).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub features: Vec<String>,
    /// Columns that are not features (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,
    /// Compress event time by this factor and move it to now; events are sent as their
    /// compressed time comes due (a year at 100000x takes about 5 minutes).
    #[arg(long, value_name = "X")]
    pub speedup: Option<f64>,
    /// With --speedup: rewrite the timestamps but send without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// With --speedup: where the compressed timeline starts (RFC 3339 or epoch milliseconds;
    /// default now).
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
    /// At most this many events per second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Skip this many rows first.
    #[arg(long, default_value_t = 0, value_name = "ROWS")]
    pub skip: usize,
    /// Send at most this many rows.
    #[arg(long, value_name = "ROWS")]
    pub limit: Option<usize>,
    /// A librdkafka producer setting for a kafka:// target, repeatable, e.g.
    /// `--kafka-option security.protocol=ssl --kafka-option ssl.ca.location=ca.pem`. Secrets
    /// (keys naming a password, secret or private key) are refused here, where `ps` shows them:
    /// put them in --kafka-options-file.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_kafka_option)]
    pub kafka_options: Vec<(String, String)>,
    /// A file of librdkafka producer settings for a kafka:// target, one `KEY=VALUE` per line
    /// (`#` starts a comment line), as kcat's `-F` reads; the place for `sasl.password` and other
    /// secrets. --kafka-option settings override it.
    #[arg(long, value_name = "FILE", env = "DRIFTWATCH_KAFKA_OPTIONS_FILE")]
    pub kafka_options_file: Option<PathBuf>,
}

/// Parses `KEY=VALUE` (the value may contain `=`).
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Whether a librdkafka setting holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, `ssl.key.pem`, ...).
pub fn is_secret_kafka_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "ssl.key.pem",
        "ssl_key",
        "sasl.oauthbearer.config",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// Parses `--kafka-option KEY=VALUE`, refusing secrets (issue 19, item 5: they showed in `ps`).
fn parse_kafka_option(s: &str) -> Result<(String, String), String> {
    let (key, value) = parse_key_value(s)?;
    if is_secret_kafka_option(&key) {
        return Err(format!(
            "`{key}` holds a secret, which the command line shows to every user of the machine (`ps`): put it in a file given with --kafka-options-file"
        ));
    }
    Ok((key, value))
}

/// Reads a `--kafka-options-file`: `KEY=VALUE` lines; blank lines and lines starting with `#` are
/// skipped.
///
/// # Errors
/// An unreadable file, or a line that is not `KEY=VALUE` (naming the file and line).
pub fn read_kafka_options_file(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (--kafka-options-file)", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            parse_key_value(l.trim())
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A deployment variant on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// The production version.
    Stable,
    /// A new version receiving part of the traffic.
    Canary,
}

impl From<VariantArg> for collector::Variant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Stable => collector::Variant::Stable,
            VariantArg::Canary => collector::Variant::Canary,
        }
    }
}

/// Which columns are features and how they are typed.
#[derive(Debug, Args, Clone, Default)]
pub struct FeatureArgs {
    /// Features to use (comma-separated). Default: every column (of both files) except those
    /// excluded and the usual non-feature columns (id, timestamp, prediction, label, ...).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub features: Vec<String>,
    /// Columns that are not features (comma-separated), on top of the usual non-feature columns.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,
    /// Treat these columns as categorical even if they hold numbers.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub categorical: Vec<String>,
    /// Treat these columns as numeric (text that is not a number is then an error naming its line).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub numeric: Vec<String>,
    /// Quantile bins per numeric feature.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub bins: usize,
    /// Largest reference sample kept per numeric feature for KS and Wasserstein (exact below it).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub sample_size: usize,
}

/// Arguments of `driftwatch profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Reference data: CSV (with a header) or Parquet (by extension).
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the profile (JSON).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Feature selection and typing.
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Also calibrate thresholds on reference chunks of this many rows and store them in the
    /// profile (for `analyze --thresholds calibrated --reference <profile>`).
    #[arg(long, value_name = "ROWS")]
    pub calibrate_chunk_size: Vec<usize>,
}

/// Output format of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table per chunk and a summary, for a terminal.
    Table,
    /// The full report as JSON (see docs/analysis-report.md).
    Json,
}

fn parse_problem_type(s: &str) -> Result<analyzer::quality::ProblemType, String> {
    s.parse()
}

/// Threshold mode of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThresholdArg {
    /// Thresholds from each verdict statistic's spread under no drift at the chunk's size, so
    /// that a chunk of clean features is flagged with probability about --false-alarm-rate, and
    /// at least 0.02 (an effect-size floor); --threshold values still apply.
    Adaptive,
    /// Fixed thresholds: 0.1 for distances, 0.05 for p-values, or --threshold values.
    Fixed,
    /// mean + 3 std of each distance over reference chunks of the same size.
    Calibrated,
}

/// Arguments of `driftwatch analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The reference: a data file (CSV or Parquet) or a profile written by `driftwatch profile`
    /// (a .json file).
    #[arg(long, short, value_name = "FILE")]
    pub reference: PathBuf,
    /// The prediction log to check: CSV or Parquet. Only its feature columns (and the timestamp
    /// column with --chunk-period) are read, typed as in the reference, so other columns may hold
    /// anything.
    #[arg(long, short, value_name = "FILE")]
    pub current: PathBuf,
    /// Cut the current data into chunks of this many rows, in file order.
    #[arg(long, value_name = "ROWS", conflicts_with = "chunk_period")]
    pub chunk_size: Option<usize>,
    /// Cut the current data into event-time periods (e.g. 1h, 30m, 1day) of --timestamp-column.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub chunk_period: Option<std::time::Duration>,
    /// The event-time column for --chunk-period.
    #[arg(long, default_value = "timestamp", value_name = "COLUMN")]
    pub timestamp_column: String,
    /// How --timestamp-column writes time: auto (RFC 3339 / ISO 8601 or epoch milliseconds),
    /// epoch_ms, epoch_s, or a strftime pattern such as '%d-%m-%Y %H:%M:%S'.
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    pub timestamp_format: String,
    /// Feature selection and typing.
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Statistics to compute and report (comma-separated): psi, kl, jensen_shannon, hellinger,
    /// ks, wasserstein, wasserstein_normed, chi2, l_infinity. Default: all.
    #[arg(long, value_delimiter = ',', value_name = "METHODS")]
    pub methods: Vec<analyzer::Method>,
    /// Statistics that decide the verdict (comma-separated; a feature drifts when any crosses its
    /// threshold). Default: wasserstein_normed and jensen_shannon for numeric features,
    /// jensen_shannon for categorical ones.
    #[arg(long, value_delimiter = ',', value_name = "METHODS")]
    pub verdict_methods: Vec<analyzer::Method>,
    /// A fixed threshold, e.g. --threshold psi=0.2 --threshold ks=0.01 (p-value methods take the
    /// significance level).
    #[arg(long = "threshold", value_name = "METHOD=VALUE", value_parser = parse_threshold)]
    pub thresholds: Vec<(analyzer::Method, f64)>,
    /// Adaptive thresholds (from the statistics' noise at each chunk's size), fixed ones, or
    /// thresholds calibrated on reference chunks of the same size.
    #[arg(long = "thresholds", value_enum, default_value_t = ThresholdArg::Adaptive)]
    pub threshold_mode: ThresholdArg,
    /// With adaptive thresholds: the probability that a chunk whose features have not drifted
    /// is flagged, shared by its features.
    #[arg(long, default_value_t = 0.01, value_name = "RATE")]
    pub false_alarm_rate: f64,
    /// Also measure realized model quality per chunk over the labelled predictions: binary
    /// (accuracy, precision, recall, F1, ROC AUC, log loss, Brier), multiclass (accuracy, macro
    /// and weighted F1) or regression (MAE, RMSE, MAPE, R2). Needs --target-column.
    #[arg(long, value_name = "TYPE", value_parser = parse_problem_type)]
    pub problem_type: Option<analyzer::quality::ProblemType>,
    /// The ground-truth column: in the current file, or in --labels.
    #[arg(long, value_name = "COLUMN", requires = "problem_type")]
    pub target_column: Option<String>,
    /// A file of labels joined to the current file's predictions by --id-column (e.g.
    /// data/car_loan/analysis_target.csv); predictions without a label are left out and counted.
    #[arg(long, value_name = "FILE", requires = "target_column")]
    pub labels: Option<PathBuf>,
    /// The column that joins --labels to the current file.
    #[arg(long, value_name = "COLUMN", default_value = "id")]
    pub id_column: String,
    /// The model's predicted class or value in the current file.
    #[arg(long, value_name = "COLUMN", default_value = "y_pred")]
    pub prediction_column: String,
    /// Binary: the predicted probability of the positive class (ROC AUC, log loss, Brier);
    /// default `y_pred_proba` when the current file has it.
    #[arg(long, value_name = "COLUMN")]
    pub score_column: Option<String>,
    /// Chunks with fewer values of a feature report "insufficient data" for it, never drift.
    #[arg(long, default_value_t = analyzer::drift::DEFAULT_MIN_SAMPLES, value_name = "N")]
    pub min_samples: u64,
    /// A chunk has dataset drift when at least this share of its features drift.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE")]
    pub dataset_drift_share: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 3 when any chunk has a drifting feature.
    #[arg(long)]
    pub fail_on_drift: bool,
    /// Multivariate drift per chunk (PCA reconstruction error as NannyML computes it, band from
    /// reference chunks): auto computes it when the reference is a data file (not a profile) and
    /// warns if it cannot; on requires it; off skips it.
    #[arg(long, value_enum, default_value_t = MultivariateArg::Auto)]
    pub multivariate: MultivariateArg,
    /// Multivariate drift: keep the principal components that explain more than this share of
    /// the reference variance.
    #[arg(long, default_value_t = analyzer::multivariate::DEFAULT_VARIANCE_KEPT, value_name = "SHARE")]
    pub multivariate_variance: f64,
}

/// When `analyze` computes multivariate drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MultivariateArg {
    /// When the reference is a data file; a failure is a warning.
    Auto,
    /// Always; a profile reference or a failure is an error.
    On,
    /// Never.
    Off,
}

fn parse_threshold(s: &str) -> Result<(analyzer::Method, f64), String> {
    let (m, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not METHOD=VALUE"))?;
    let method: analyzer::Method = m
        .parse()
        .map_err(|e: analyzer::stats::UnknownMethod| e.to_string())?;
    let value: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("`{v}` is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("threshold {value} must be a non-negative number"));
    }
    Ok((method, value))
}

/// Installs the tracing subscriber for the chosen format and filter.
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn threshold_parses() {
        assert_eq!(
            parse_threshold("psi=0.2").unwrap(),
            (analyzer::Method::Psi, 0.2)
        );
        assert!(parse_threshold("psi").is_err());
        assert!(parse_threshold("nope=1").is_err());
    }
}
