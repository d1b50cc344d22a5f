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

/// Threshold mode of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThresholdArg {
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
    /// The prediction log to check: CSV or Parquet.
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
    /// Fixed thresholds, or thresholds calibrated on reference chunks of the same size.
    #[arg(long = "thresholds", value_enum, default_value_t = ThresholdArg::Fixed)]
    pub threshold_mode: ThresholdArg,
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
}

fn parse_threshold(s: &str) -> Result<(analyzer::Method, f64), String> {
    let (m, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not METHOD=VALUE"))?;
    let method: analyzer::Method = m.parse().map_err(|e: analyzer::stats::UnknownMethod| e.to_string())?;
    let value: f64 = v.trim().parse().map_err(|_| format!("`{v}` is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("threshold {value} must be a non-negative number"));
    }
    Ok((method, value))
}

/// Installs the tracing subscriber for the chosen format and filter.
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
        assert_eq!(parse_threshold("psi=0.2").unwrap(), (analyzer::Method::Psi, 0.2));
        assert!(parse_threshold("psi").is_err());
        assert!(parse_threshold("nope=1").is_err());
    }
}
