//! The write-ahead log of HTTP ingest: with it, `202 Accepted` means the request's events survive
//! `kill -9` (issue 19, item 4).
//!
//! Each accepted request is one *record* with a sequence number, its *offset*, in the pseudo
//! partition [`wal_partition`]. From there the events travel exactly as a Kafka message's do: the
//! [`OffsetTracker`] holds the offset until every batch with its events is absorbed, the checkpoint
//! saves the partition's watermark with the window state, and after a restart the records at or
//! above the checkpointed watermark are replayed (those absorbed above it are skipped), so every
//! acknowledged event is counted exactly once. Records below the durable watermark are deleted a
//! segment at a time.
//!
//! **Group commit.** One writer thread takes every append queued while it was writing the
//! previous group, writes them with one `write` and makes them durable with one `fdatasync`, then
//! answers each; the added latency of a request is one fsync plus the wait for the group in front
//! of it, and throughput does not fall with the number of concurrent clients.
//!
//! **Layout.** The directory holds segments named by their first offset (`{offset:020}.wal`), each a
//! sequence of records, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | payload length `n` |
//! | 4 | CRC-32 (IEEE) of the next `9 + n` bytes |
//! | 8 | offset (`i64`) |
//! | 1 | payload kind (`1`: driftwatch JSON events, an array or NDJSON) |
//! | n | payload |
//!
//! A record cut short at the end of the newest segment is the write `kill -9` interrupted (never
//! acknowledged): it is cut off with a warning. Any other damaged record is an error naming the
//! file and byte offset.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::offsets::{Observed, OffsetTracker, PartitionPosition, TopicPartition};

/// Topic name of the write-ahead log's pseudo partition in checkpoints (`driftwatch:http-wal/0`).
/// The colon is not allowed in Kafka topic names, so it cannot clash with a real topic.
pub const WAL_TOPIC: &str = "driftwatch:http-wal";

/// Size at which a segment is closed and a new one started (default 64 MiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Most bytes one group commit writes (a group is cut after the request that passes it).
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Longest tail a crash can leave unfinished: one group (which may pass [`MAX_GROUP_BYTES`] by
/// one request of up to 64 MiB). A longer damaged tail is reported, not cut.
const MAX_TORN_TAIL_BYTES: usize = MAX_GROUP_BYTES + (64 << 20);

/// Bytes of a record before its payload.
const HEADER_BYTES: usize = 17;

/// Payload kind: driftwatch JSON events, as `POST /v1/events` takes them.
const KIND_JSON_EVENTS: u8 = 1;

/// The pseudo partition of the write-ahead log.
pub fn wal_partition() -> TopicPartition {
    TopicPartition::new(WAL_TOPIC, 0)
}

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A record inside the log is damaged (not a torn write at its end).
    #[error(
        "write-ahead log {path}: the record at byte {byte} is damaged ({reason}); acknowledged events may be lost. Move the directory aside to start without it"
    )]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the record in the segment.
        byte: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or fsync failed: nothing more is acknowledged as durable.
    #[error("the write-ahead log is unavailable after a failed write ({0}); restart driftwatch")]
    Failed(String),
    /// The writer thread has stopped (shutdown).
    #[error("the write-ahead log is closed")]
    Closed,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A record found at start-up, to be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// Its offset in [`wal_partition`].
    pub offset: i64,
    /// The request's events as driftwatch JSON (an array or NDJSON).
    pub payload: Bytes,
}

/// One segment of a [`Replay`]: the offsets to replay from it, and its records with those
/// offsets or why it can no longer be read.
pub type SegmentReplay = (Vec<i64>, Result<Vec<WalRecord>, WalError>);

/// The records to replay after a restart, read back one segment at a time, so that replaying a
/// large log holds one segment's payloads in memory rather than the whole log's (review finding
/// M6). Each offset is already observed by the tracker: push its record's events with it, then
/// complete it.
#[derive(Debug, Default)]
pub struct Replay {
    /// Segments holding records to replay, oldest first, with those records' offsets.
    segments: VecDeque<(PathBuf, Vec<i64>)>,
}

impl Replay {
    /// Records to replay.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|(_, o)| o.len()).sum()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The next segment: the offsets to replay from it, and its records with those offsets (in
    /// offset order) or why it can no longer be read. `None` when every segment was read.
    pub fn next_segment(&mut self) -> Option<SegmentReplay> {
        let (path, offsets) = self.segments.pop_front()?;
        let keep: std::collections::HashSet<i64> = offsets.iter().copied().collect();
        let records = scan_segment(&path).map(|records| {
            records
                .into_iter()
                .filter(|r| keep.contains(&r.offset))
                .collect()
        });
        Some((offsets, records))
    }

    /// Every record to replay at once, without consuming them (tests and small logs).
    ///
    /// # Errors
    /// The first segment that can no longer be read.
    pub fn read_all(&self) -> Result<Vec<WalRecord>, WalError> {
        let mut out = Vec::new();
        for (path, offsets) in &self.segments {
            out.extend(
                scan_segment(path)?
                    .into_iter()
                    .filter(|r| offsets.binary_search(&r.offset).is_ok()),
            );
        }
        Ok(out)
    }
}

/// What [`Wal::open`] found.
#[derive(Debug)]
pub struct Recovered {
    /// Records at or above the checkpointed watermark that were not absorbed before the restart,
    /// in offset order, to read back segment by segment.
    pub replay: Replay,
    /// Records skipped because the checkpoint had absorbed them.
    pub skipped: usize,
    /// Bytes cut off the end of the newest segment (a write interrupted by a crash).
    pub torn_bytes: u64,
}

/// Where an append's offsets (or its error) go once its group is durable.
type Done = oneshot::Sender<Result<Vec<i64>, WalError>>;

enum Command {
    /// Records written in one group, offsets in order.
    Append {
        payloads: Vec<Bytes>,
        done: Done,
    },
    TruncateBelow(i64),
}

/// Handle to the write-ahead log. Cheap to clone; the writer thread stops when the last handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct Wal {
    tx: std_mpsc::Sender<Command>,
}

struct Segment {
    first: i64,
    path: PathBuf,
}

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    tracker: OffsetTracker,
    partition: TopicPartition,
    /// Closed segments, oldest first.
    closed: Vec<Segment>,
    active: Segment,
    file: File,
    size: u64,
    next: i64,
    failed: Option<String>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, assigns [`wal_partition`] in `tracker` at `resume`
    /// (the checkpointed position), and returns the records to replay, already observed, then
    /// starts the writer thread. New appends get offsets after every record in the log and at
    /// or above the checkpointed watermark.
    ///
    /// # Errors
    /// [`WalError::Io`] when the directory or a segment cannot be read or written;
    /// [`WalError::Corrupt`] for a damaged record that is not a torn write at the end of the newest
    /// segment.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        tracker: OffsetTracker,
        resume: Option<&PartitionPosition>,
    ) -> Result<(Self, Recovered), WalError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let partition = wal_partition();
        tracker.assign(&partition, resume);
        let watermark = resume.map_or(0, |r| r.watermark);
        let mut segments = list_segments(dir)?;
        let mut recovered = Recovered {
            replay: Replay::default(),
            skipped: 0,
            torn_bytes: 0,
        };
        let mut next = watermark;
        let count = segments.len();
        for (i, segment) in segments.iter().enumerate() {
            let newest = i + 1 == count;
            let (records, torn) = read_segment(&segment.path, newest)?;
            if torn > 0 {
                tracing::warn!(file = %segment.path.display(), bytes = torn, "write-ahead log: cut off a record a crash interrupted (it was never acknowledged)");
                recovered.torn_bytes = torn;
            }
            // Only the offsets are kept: the payloads are read again when replayed.
            let mut offsets = Vec::new();
            for r in records {
                next = next.max(r.offset + 1);
                if r.offset < watermark {
                    continue;
                }
                match tracker.observe(&partition, r.offset) {
                    Observed::Process => offsets.push(r.offset),
                    Observed::Skip | Observed::NotAssigned => recovered.skipped += 1,
                }
            }
            if !offsets.is_empty() {
                recovered
                    .replay
                    .segments
                    .push_back((segment.path.clone(), offsets));
            }
        }
        // Offsets the checkpoint counts as absorbed are never handed out again, even when the
        // log no longer holds their records (a failed write group, a log set aside): the tracker
        // would skip them and a new request's events would be treated as absorbed (review).
        if let Some(&highest) = resume.and_then(|r| r.absorbed_above.iter().max()) {
            next = next.max(highest + 1);
        }
        // Segments wholly below the watermark are no longer needed.
        while segments.len() > 1 && segments[1].first <= watermark {
            let old = segments.remove(0);
            fs::remove_file(&old.path).map_err(io_error(&old.path))?;
        }
        let active = match segments.pop() {
            Some(s) => s,
            None => Segment {
                first: next,
                path: segment_path(dir, next),
            },
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&active.path)
            .map_err(io_error(&active.path))?;
        let size = file.metadata().map_err(io_error(&active.path))?.len();
        sync_dir(dir)?;
        let writer = Writer {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            tracker,
            partition,
            closed: segments,
            active,
            file,
            size,
            next,
            failed: None,
        };
        let (tx, rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("http-wal".into())
            .spawn(move || writer.run(&rx))
            .map_err(io_error(dir))?;
        Ok((Self { tx }, recovered))
    }

    /// Appends one request's events (driftwatch JSON) and waits until they are durable. The
    /// offset is observed by the tracker before the write: push the events with it, then
    /// complete it, even if the request is dropped meanwhile (so call this from a task that
    /// outlives the request).
    ///
    /// # Errors
    /// [`WalError::Failed`] after a failed write or fsync (this one's or an earlier one's);
    /// [`WalError::Closed`] at shutdown.
    pub async fn append(&self, payload: Bytes) -> Result<i64, WalError> {
        let offsets = self.append_all(vec![payload]).await?;
        offsets.first().copied().ok_or(WalError::Closed)
    }

    /// Appends several records in one group (one request's events, one record per model) and
    /// waits until they are durable: their offsets, in order. As [`Wal::append`] for each.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub async fn append_all(&self, payloads: Vec<Bytes>) -> Result<Vec<i64>, WalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Append { payloads, done })
            .map_err(|_| WalError::Closed)?;
        rx.await.map_err(|_| WalError::Closed)?
    }

    /// Deletes the segments whose records are all below `watermark` (the durable watermark of
    /// [`wal_partition`] after a checkpoint).
    pub fn truncate_below(&self, watermark: i64) {
        let _ = self.tx.send(Command::TruncateBelow(watermark));
    }
}

impl Writer {
    fn run(mut self, rx: &std_mpsc::Receiver<Command>) {
        let mut group: Vec<(Vec<i64>, Done)> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut command = Some(first);
            while let Some(c) = command.take() {
                match c {
                    Command::Append { payloads, done } => {
                        if let Some(f) = &self.failed {
                            let _ = done.send(Err(WalError::Failed(f.clone())));
                        } else {
                            let mut offsets = Vec::with_capacity(payloads.len());
                            for payload in &payloads {
                                // Never an offset the tracker already counts as absorbed.
                                let offset = loop {
                                    let o = self.next;
                                    self.next += 1;
                                    if self.tracker.observe(&self.partition, o) != Observed::Skip {
                                        break o;
                                    }
                                };
                                encode(&mut buf, offset, payload);
                                offsets.push(offset);
                            }
                            group.push((offsets, done));
                        }
                    }
                    Command::TruncateBelow(w) => self.truncate_below(w),
                }
                if buf.len() < MAX_GROUP_BYTES {
                    command = rx.try_recv().ok();
                }
            }
            if group.is_empty() {
                continue;
            }
            let Some(&first) = group.iter().flat_map(|(o, _)| o.first()).next() else {
                // Only empty appends: nothing to write.
                for (offsets, done) in group.drain(..) {
                    let _ = done.send(Ok(offsets));
                }
                continue;
            };
            let written = self.write_group(&buf, first);
            buf.clear();
            match written {
                Ok(()) => {
                    for (offset, done) in group.drain(..) {
                        let _ = done.send(Ok(offset));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(error = %message, "write-ahead log write failed: HTTP ingest answers 503 until driftwatch restarts");
                    self.failed = Some(message.clone());
                    let offsets: Vec<_> = group
                        .iter()
                        .flat_map(|(o, _)| o.iter())
                        .map(|o| (self.partition.clone(), *o))
                        .collect();
                    // Not acknowledged: they must not hold the watermark back.
                    self.tracker.complete(&offsets);
                    for (_, done) in group.drain(..) {
                        let _ = done.send(Err(WalError::Failed(message.clone())));
                    }
                }
            }
        }
    }

    /// Writes and fsyncs one group whose first record has offset `first`.
    fn write_group(&mut self, buf: &[u8], first: i64) -> Result<(), WalError> {
        if self.size >= self.segment_bytes {
            self.roll(first)?;
        }
        let path = &self.active.path;
        self.file.write_all(buf).map_err(io_error(path))?;
        self.file.sync_data().map_err(io_error(path))?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Closes the active segment and starts one whose first record has offset `first`.
    fn roll(&mut self, first: i64) -> Result<(), WalError> {
        let path = segment_path(&self.dir, first);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.active, Segment { first, path });
        self.closed.push(old);
        self.file = file;
        self.size = 0;
        Ok(())
    }

    fn truncate_below(&mut self, watermark: i64) {
        // A closed segment can go when the next segment starts at or below the watermark.
        while let Some(first) = self.closed.first() {
            let next_first = self.closed.get(1).map_or(self.active.first, |s| s.first);
            if next_first > watermark {
                break;
            }
            if let Err(e) = fs::remove_file(&first.path) {
                tracing::warn!(file = %first.path.display(), error = %e, "cannot delete a write-ahead log segment");
                break;
            }
            self.closed.remove(0);
        }
    }
}

fn encode(buf: &mut Vec<u8>, offset: i64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&offset.to_le_bytes());
    crc.update(&[KIND_JSON_EVENTS]);
    crc.update(payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.push(KIND_JSON_EVENTS);
    buf.extend_from_slice(payload);
}

fn segment_path(dir: &Path, first: i64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Segments in `dir`, oldest first. Other files are left alone.
fn list_segments(dir: &Path) -> Result<Vec<Segment>, WalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        segments.push(Segment {
            first,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|s| s.first);
    Ok(segments)
}

/// Reads one segment's records. In the newest segment a record that runs past the end of the
/// file, or is followed only by zero bytes, is a torn write: it is cut off and its length
/// returned; anywhere else a bad record is [`WalError::Corrupt`].
fn read_segment(path: &Path, newest: bool) -> Result<(Vec<WalRecord>, u64), WalError> {
    let data = read_file(path)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut last_offset: Option<i64> = None;
    while at < data.len() {
        let problem = match decode(&data, at) {
            Ok((record, end)) => {
                if last_offset.is_some_and(|l| record.offset <= l) {
                    Some((
                        false,
                        format!("offset {} after {last_offset:?}", record.offset),
                    ))
                } else {
                    last_offset = Some(record.offset);
                    records.push(record);
                    at = end;
                    None
                }
            }
            Err((runs_past_end, reason)) => Some((runs_past_end, reason)),
        };
        if let Some((runs_past_end, reason)) = problem {
            let rest_is_zero = data[at..].iter().all(|&b| b == 0);
            // A write kill -9 interrupts is at most one group; a longer "tail" is damage (a
            // corrupted length field), never cut silently.
            let one_group = data.len() - at <= MAX_TORN_TAIL_BYTES;
            if newest && one_group && (runs_past_end || rest_is_zero) {
                let torn = (data.len() - at) as u64;
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_error(path))?;
                file.set_len(at as u64).map_err(io_error(path))?;
                file.sync_all().map_err(io_error(path))?;
                return Ok((records, torn));
            }
            return Err(WalError::Corrupt {
                path: path.to_path_buf(),
                byte: at as u64,
                reason,
            });
        }
    }
    Ok((records, 0))
}

/// A segment's bytes.
fn read_file(path: &Path) -> Result<Bytes, WalError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_error(path))?;
    Ok(Bytes::from(data))
}

/// Reads back the records of a segment [`Wal::open`] already checked: up to the first record
/// that does not decode (the writer may be appending to the newest segment meanwhile), never
/// cutting anything.
fn scan_segment(path: &Path) -> Result<Vec<WalRecord>, WalError> {
    let data = read_file(path)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Ok((record, end)) = decode(&data, at) {
        records.push(record);
        at = end;
    }
    Ok(records)
}

/// Decodes the record at `at`: the record and the byte after it, or whether the record runs past
/// the end of the data, with what is wrong.
fn decode(data: &Bytes, at: usize) -> Result<(WalRecord, usize), (bool, String)> {
    let header = data
        .get(at..at + HEADER_BYTES)
        .ok_or((true, "the header is cut short".to_string()))?;
    let le4 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let len = le4(&header[0..4]) as usize;
    let crc = le4(&header[4..8]);
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&header[8..16]);
    let offset = i64::from_le_bytes(offset);
    let kind = header[16];
    let end = at
        .checked_add(HEADER_BYTES)
        .and_then(|s| s.checked_add(len))
        .ok_or((true, "the length overflows".to_string()))?;
    if end > data.len() {
        return Err((true, format!("the payload of {len} bytes is cut short")));
    }
    let actual = crc32fast::hash(&data[at + 8..end]);
    if actual != crc {
        return Err((
            false,
            format!("CRC-32 {actual:#010x}, expected {crc:#010x}"),
        ));
    }
    if kind != KIND_JSON_EVENTS {
        return Err((false, format!("unknown payload kind {kind}")));
    }
    if offset < 0 {
        return Err((false, format!("negative offset {offset}")));
    }
    Ok((
        WalRecord {
            offset,
            payload: data.slice(at + HEADER_BYTES..end),
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(
        dir: &Path,
        segment_bytes: u64,
        resume: Option<&PartitionPosition>,
    ) -> (Wal, Recovered, OffsetTracker) {
        let tracker = OffsetTracker::new();
        let (wal, recovered) = Wal::open(dir, segment_bytes, tracker.clone(), resume).unwrap();
        (wal, recovered, tracker)
    }

    fn payload(i: usize) -> Bytes {
        Bytes::from(format!("{{\"n\":{i}}}"))
    }

    #[tokio::test]
    async fn appended_records_are_replayed_after_a_restart_from_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, recovered, tracker) = open(dir.path(), DEFAULT_SEGMENT_BYTES, None);
        assert!(recovered.replay.is_empty());
        let mut offsets = Vec::new();
        for i in 0..5 {
            offsets.push(wal.append(payload(i)).await.unwrap());
        }
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        // 0, 1 and 3 absorbed and checkpointed; then the process dies.
        let tp = wal_partition();
        tracker.complete(&[(tp.clone(), 0), (tp.clone(), 1), (tp.clone(), 3)]);
        let snapshot = tracker.snapshot();
        let position = snapshot.get(&tp).unwrap().clone();
        assert_eq!(position.watermark, 2);
        drop(wal);

        let (wal, recovered, tracker) = open(dir.path(), DEFAULT_SEGMENT_BYTES, Some(&position));
        let replayed: Vec<(i64, Bytes)> = recovered
            .replay
            .read_all()
            .unwrap()
            .into_iter()
            .map(|r| (r.offset, r.payload))
            .collect();
        assert_eq!(replayed, vec![(2, payload(2)), (4, payload(4))]);
        assert_eq!(recovered.skipped, 1);
        // New appends continue after the log.
        assert_eq!(wal.append(payload(5)).await.unwrap(), 5);
        tracker.complete(&[(tp.clone(), 2), (tp.clone(), 4), (tp.clone(), 5)]);
        assert_eq!(tracker.snapshot().get(&tp).unwrap().watermark, 6);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_damage_inside_is_an_error_naming_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES, None);
        for i in 0..3 {
            wal.append(payload(i)).await.unwrap();
        }
        drop(wal);
        let segment = segment_path(dir.path(), 0);
        let whole = fs::read(&segment).unwrap();
        let record = HEADER_BYTES + payload(0).len();
        assert_eq!(whole.len(), 3 * record);

        // A crash in the middle of the fourth record's write.
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..record - 3]);
        fs::write(&segment, &torn).unwrap();
        let (wal, recovered, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES, None);
        assert_eq!(recovered.replay.len(), 3);
        assert_eq!(recovered.torn_bytes, (record - 3) as u64);
        assert_eq!(fs::read(&segment).unwrap(), whole);
        drop(wal);

        // One flipped payload byte in the second record.
        let mut flipped = whole.clone();
        flipped[record + HEADER_BYTES] ^= 0x40;
        fs::write(&segment, &flipped).unwrap();
        let err = Wal::open(
            dir.path(),
            DEFAULT_SEGMENT_BYTES,
            OffsetTracker::new(),
            None,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&segment.display().to_string())
                && message.contains(&format!("at byte {record}")),
            "{message}"
        );
        assert_eq!(fs::read(&segment).unwrap(), flipped, "left as it was");
    }

    #[tokio::test]
    async fn segments_roll_and_are_deleted_below_the_durable_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let record = (HEADER_BYTES + payload(0).len()) as u64;
        // Two records per segment.
        let (wal, _, tracker) = open(dir.path(), 2 * record, None);
        for i in 0..7 {
            // One at a time: one group each.
            assert_eq!(wal.append(payload(i)).await.unwrap(), i as i64);
        }
        let names = |d: &Path| {
            let mut n: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(
            names(dir.path()),
            [0, 2, 4, 6]
                .iter()
                .map(|o| format!("{o:020}.wal"))
                .collect::<Vec<_>>()
        );
        let tp = wal_partition();
        tracker.complete(&(0..5).map(|o| (tp.clone(), o)).collect::<Vec<_>>());
        // Watermark 5: segments 0 and 2 hold only offsets below it; segment 4 holds 5.
        wal.truncate_below(5);
        // The truncation runs on the writer thread; an append after it is a barrier.
        assert_eq!(wal.append(payload(7)).await.unwrap(), 7);
        assert_eq!(
            names(dir.path()),
            [4, 6]
                .iter()
                .map(|o| format!("{o:020}.wal"))
                .collect::<Vec<_>>()
        );
        drop(wal);
        let position = PartitionPosition {
            watermark: 5,
            absorbed_above: vec![],
        };
        let (_, recovered, _) = open(dir.path(), 2 * record, Some(&position));
        let offsets: Vec<i64> = recovered
            .replay
            .read_all()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, vec![5, 6, 7]);
        // One segment at a time (review finding M6): 2-record segments, so 5 and 6, 7 come in
        // different reads, each with only its own offsets.
        let mut replay = recovered.replay;
        let mut reads = Vec::new();
        while let Some((wanted, records)) = replay.next_segment() {
            let got: Vec<i64> = records.unwrap().iter().map(|r| r.offset).collect();
            assert_eq!(got, wanted);
            reads.push(got);
        }
        assert!(reads.len() >= 2, "{reads:?}");
        assert_eq!(reads.concat(), vec![5, 6, 7]);
    }

    #[tokio::test]
    async fn without_a_log_new_offsets_start_at_the_checkpointed_watermark() {
        // The log directory was lost but the checkpoint says 0..41 are absorbed: offsets below
        // 41 would be skipped as absorbed, so the log must not hand them out again.
        let dir = tempfile::tempdir().unwrap();
        let position = PartitionPosition {
            watermark: 41,
            absorbed_above: vec![],
        };
        let (wal, recovered, tracker) = open(dir.path(), DEFAULT_SEGMENT_BYTES, Some(&position));
        assert!(recovered.replay.is_empty());
        assert_eq!(wal.append(payload(0)).await.unwrap(), 41);
        tracker.complete(&[(wal_partition(), 41)]);
        assert_eq!(
            tracker.snapshot().get(&wal_partition()).unwrap().watermark,
            42
        );
    }

    /// Review finding: offsets the checkpoint counts as absorbed above its watermark are never
    /// reused, even without their records (a failed group, a log set aside); before, offset 1
    /// was handed out again and the new request's events were treated as absorbed.
    #[tokio::test]
    async fn offsets_absorbed_above_the_watermark_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let position = PartitionPosition {
            watermark: 0,
            absorbed_above: vec![1, 3],
        };
        let (wal, recovered, tracker) = open(dir.path(), DEFAULT_SEGMENT_BYTES, Some(&position));
        assert!(recovered.replay.is_empty());
        assert_eq!(wal.append(payload(0)).await.unwrap(), 4);
        // Offset 4 is pending (not taken for absorbed): the watermark waits for it.
        assert_eq!(tracker.pending(None), 1);
    }

    #[tokio::test]
    async fn concurrent_appends_share_fsyncs_and_get_distinct_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES, None);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.append(payload(i)).await.unwrap() })
            })
            .collect();
        let mut offsets = Vec::new();
        for t in tasks {
            offsets.push(t.await.unwrap());
        }
        offsets.sort_unstable();
        assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
        drop(wal);
        let (_, recovered, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES, None);
        assert_eq!(recovered.replay.len(), 200);
    }
}
