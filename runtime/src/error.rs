//! Errors of the runtime.

use std::path::PathBuf;

/// An error starting the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The checkpoint cannot be read; the service does not start from it (it would lose or
    /// double-count events). The fix is named in the message.
    #[error(
        "cannot restore the checkpoint in {}: {source}\n  driftwatch does not start from a damaged checkpoint, which would lose or double-count events; to set it aside and resume from the offsets committed to Kafka, start once with `driftwatch serve --reset-checkpoint`",
        dir.display()
    )]
    UnreadableCheckpoint {
        /// The checkpoint directory (`checkpoint.dir`).
        dir: PathBuf,
        /// What is wrong with it, naming the file.
        source: Box<analyzer::AnalyzerError>,
    },
    /// The checkpoint directory cannot be created or set aside.
    #[error("checkpoint directory {}: {source}", dir.display())]
    CheckpointDir {
        /// The checkpoint directory (`checkpoint.dir`).
        dir: PathBuf,
        /// The I/O error.
        source: Box<analyzer::AnalyzerError>,
    },
}
