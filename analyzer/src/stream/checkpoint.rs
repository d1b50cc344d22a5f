//! Checkpoints of the streaming state: open windows, model clocks, recent window reports and the
//! source offsets they cover, written so that a crash at any moment leaves a consistent state.
//!
//! Layout of the checkpoint directory:
//! - `manifest.json`: what the checkpoint holds; replaced atomically (write, fsync, rename, fsync
//!   the directory), so it is always either the old or the new one.
//! - `windows/*.arrows`: one Arrow IPC stream per open window, appended with the batches that
//!   arrived since the previous checkpoint and fsynced before the manifest that counts them is
//!   written. A crash after an append but before the manifest leaves extra batches the next start
//!   ignores (the manifest says how many to read), and the source re-reads them from its
//!   checkpointed offsets: nothing is lost and nothing is counted twice.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};

use crate::error::AnalyzerError;
use crate::stream::report::{SeriesKey, WindowReport};
use crate::stream::windows::{ModelClock, OpenWindow, Windows};

/// The `format` of a checkpoint manifest.
pub const CHECKPOINT_FORMAT: &str = "driftwatch.checkpoint";
/// The manifest version this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// One open window in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WindowEntry {
    key: SeriesKey,
    start_ms: i64,
    rows: u64,
    retained: u64,
    file: String,
    batches: usize,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    written_at: DateTime<Utc>,
    /// The source positions the state covers (opaque to the analyzer).
    offsets: serde_json::Value,
    clocks: BTreeMap<String, ModelClock>,
    windows: Vec<WindowEntry>,
    history: Vec<WindowReport>,
}

/// What a checkpoint restores.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The source positions saved with the state.
    pub offsets: serde_json::Value,
    /// Model clocks.
    pub clocks: BTreeMap<String, ModelClock>,
    /// Open windows with their batches.
    pub windows: Vec<(SeriesKey, i64, OpenWindow)>,
    /// Recent closed-window reports.
    pub history: Vec<WindowReport>,
    /// When the checkpoint was written.
    pub written_at: DateTime<Utc>,
}

struct Writer {
    file: String,
    writer: StreamWriter<BufWriter<File>>,
}

/// Writes checkpoints into one directory.
pub struct Checkpointer {
    dir: PathBuf,
    generation: u64,
    writers: HashMap<(SeriesKey, i64), Writer>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("dir", &self.dir)
            .field("open_files", &self.writers.len())
            .finish()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AnalyzerError + '_ {
    move |source| AnalyzerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn ckpt_err(path: &Path, message: impl std::fmt::Display) -> AnalyzerError {
    AnalyzerError::Read {
        path: path.to_path_buf(),
        message: format!("checkpoint: {message}"),
    }
}

impl Checkpointer {
    /// A checkpointer writing into `dir` (created if missing).
    ///
    /// # Errors
    /// [`AnalyzerError::Io`] when the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, AnalyzerError> {
        let dir = dir.into();
        let windows = dir.join("windows");
        fs::create_dir_all(&windows).map_err(io_err(&windows))?;
        let generation = Utc::now().timestamp_micros().unsigned_abs();
        Ok(Self {
            dir,
            generation,
            writers: HashMap::new(),
        })
    }

    /// The manifest path.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    /// Reads the last checkpoint of `dir`, or `None` when there is none.
    ///
    /// # Errors
    /// [`AnalyzerError::Read`] when the manifest or a window file is corrupt (the message says
    /// which; delete the directory to start from the committed offsets instead).
    pub fn restore(dir: &Path) -> Result<Option<Restored>, AnalyzerError> {
        let path = dir.join("manifest.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| ckpt_err(&path, e))?;
        if manifest.format != CHECKPOINT_FORMAT || manifest.version != CHECKPOINT_VERSION {
            return Err(ckpt_err(
                &path,
                format!(
                    "unsupported format {} version {}",
                    manifest.format, manifest.version
                ),
            ));
        }
        let mut windows = Vec::with_capacity(manifest.windows.len());
        for w in &manifest.windows {
            let file = dir.join("windows").join(&w.file);
            let mut batches = Vec::with_capacity(w.batches);
            if w.batches > 0 {
                let reader = StreamReader::try_new(
                    BufReader::new(File::open(&file).map_err(io_err(&file))?),
                    None,
                )
                .map_err(|e| ckpt_err(&file, e))?;
                for batch in reader.take(w.batches) {
                    batches.push(batch.map_err(|e| ckpt_err(&file, e))?);
                }
                if batches.len() < w.batches {
                    return Err(ckpt_err(
                        &file,
                        format!("{} batches, the manifest says {}", batches.len(), w.batches),
                    ));
                }
            }
            windows.push((
                w.key.clone(),
                w.start_ms,
                OpenWindow {
                    batches,
                    rows: w.rows,
                    retained: w.retained,
                    checkpointed_batches: 0,
                },
            ));
        }
        Ok(Some(Restored {
            offsets: manifest.offsets,
            clocks: manifest.clocks,
            windows,
            history: manifest.history,
            written_at: manifest.written_at,
        }))
    }

    /// Writes a checkpoint of `windows` with the source `offsets` they cover and the recent
    /// `history`. When it returns, the checkpoint is durable.
    ///
    /// # Errors
    /// [`AnalyzerError::Io`] or [`AnalyzerError::Read`] when a file cannot be written; the previous
    /// checkpoint then stays in force.
    pub fn write(
        &mut self,
        windows: &mut Windows,
        offsets: serde_json::Value,
        history: &[WindowReport],
    ) -> Result<(), AnalyzerError> {
        let clocks = windows.clocks();
        let mut entries = Vec::new();
        let mut live = Vec::new();
        for ((key, start), w) in windows.open_windows() {
            let id = (key.clone(), *start);
            live.push(id.clone());
            if !self.writers.contains_key(&id) && !w.batches.is_empty() {
                let name = format!(
                    "{}-{}-{:016x}.arrows",
                    self.generation,
                    start,
                    key_hash(key)
                );
                let path = self.dir.join("windows").join(&name);
                let file = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                let writer = StreamWriter::try_new(BufWriter::new(file), &w.batches[0].schema())
                    .map_err(|e| ckpt_err(&path, e))?;
                self.writers
                    .insert(id.clone(), Writer { file: name, writer });
                w.checkpointed_batches = 0;
            }
            let Some(writer) = self.writers.get_mut(&id) else {
                entries.push(WindowEntry {
                    key: key.clone(),
                    start_ms: *start,
                    rows: w.rows,
                    retained: w.retained,
                    file: String::new(),
                    batches: 0,
                });
                continue;
            };
            let path = self.dir.join("windows").join(&writer.file);
            for batch in &w.batches[w.checkpointed_batches..] {
                writer.writer.write(batch).map_err(|e| ckpt_err(&path, e))?;
            }
            writer.writer.flush().map_err(|e| ckpt_err(&path, e))?;
            writer
                .writer
                .get_mut()
                .get_ref()
                .sync_data()
                .map_err(io_err(&path))?;
            w.checkpointed_batches = w.batches.len();
            entries.push(WindowEntry {
                key: key.clone(),
                start_ms: *start,
                rows: w.rows,
                retained: w.retained,
                file: writer.file.clone(),
                batches: w.batches.len(),
            });
        }
        let manifest = Manifest {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            written_at: Utc::now(),
            offsets,
            clocks,
            windows: entries,
            history: history.to_vec(),
        };
        let path = self.manifest_path();
        let tmp = self.dir.join("manifest.json.tmp");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            serde_json::to_writer(&mut f, &manifest).map_err(|e| ckpt_err(&tmp, e))?;
            f.flush().map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        // Files of windows closed since the previous checkpoint are no longer referenced.
        let closed: Vec<(SeriesKey, i64)> = self
            .writers
            .keys()
            .filter(|k| !live.contains(k))
            .cloned()
            .collect();
        for k in closed {
            if let Some(w) = self.writers.remove(&k) {
                let _ = fs::remove_file(self.dir.join("windows").join(&w.file));
            }
        }
        // Files from earlier processes that no manifest references any more.
        let referenced: Vec<String> = self.writers.values().map(|w| w.file.clone()).collect();
        if let Ok(entries) = fs::read_dir(self.dir.join("windows")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !referenced.contains(&name) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

fn key_hash(key: &SeriesKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key
        .model
        .bytes()
        .chain([0])
        .chain(key.version.bytes())
        .chain([0])
        .chain(key.variant.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
