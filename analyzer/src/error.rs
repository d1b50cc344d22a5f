//! The analyzer's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading data, fitting profiles or analysing drift.
///
/// Messages name the operation and the input (file, line or row, column) so that a user can find
/// the bad value without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzerError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A prediction-log file could not be read (the `tables` crate's readers: unreadable, empty or
    /// malformed), with the reader's message unchanged.
    #[error(transparent)]
    Table(#[from] tables::TableError),
    /// A file's content is malformed (a damaged checkpoint).
    #[error("cannot parse {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported, including the line where it knows it.
        message: String,
    },
    /// A named column does not exist.
    #[error("{} has no column `{column}` (named in {origin}); its columns are: {available}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// Where the name came from, for example "--features".
        origin: String,
        /// The columns the file does have, comma-separated.
        available: String,
    },
    /// A value does not have the type its column needs.
    #[error("{}, {location}, column `{column}`: {message}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// `line N` (CSV) or `row N`.
        location: String,
        /// The column.
        column: String,
        /// What is wrong with the value.
        message: String,
    },
    /// Several independent problems were found; all are reported at once.
    #[error("{} problems:\n  - {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Multiple(Vec<AnalyzerError>),
    /// A column has a type that cannot be a feature (timestamps, nested types).
    #[error("column `{column}` has type {data_type}, which cannot be used as a feature")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
    },
    /// A reference profile file is not valid.
    #[error("invalid reference profile {}: {message}", path.display())]
    Profile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two profiles or states cannot be merged.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A configuration value is invalid.
    #[error("invalid setting `{key}`: {message}")]
    Config {
        /// The setting (flag or config key).
        key: String,
        /// Why it is invalid.
        message: String,
    },
    /// A query over window batches failed.
    #[error("query failed: {0}")]
    Query(String),
}

impl AnalyzerError {
    /// Folds a list of errors into one: none, the single error, or [`AnalyzerError::Multiple`].
    pub fn collect(mut errors: Vec<AnalyzerError>) -> Result<(), AnalyzerError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(AnalyzerError::Multiple(errors)),
        }
    }

    /// A bounded label for metrics and exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            AnalyzerError::Io { .. } => "io",
            AnalyzerError::Table(e) => e.kind(),
            AnalyzerError::Read { .. } => "read",
            AnalyzerError::MissingColumn { .. } => "missing_column",
            AnalyzerError::InvalidValue { .. } => "invalid_value",
            AnalyzerError::Multiple(_) => "multiple",
            AnalyzerError::UnsupportedType { .. } => "unsupported_type",
            AnalyzerError::Profile { .. } => "profile",
            AnalyzerError::Merge(_) => "merge",
            AnalyzerError::Config { .. } => "config",
            AnalyzerError::Query(_) => "query",
        }
    }
}
