//! What a CSV file needs before arrow's reader can take it: decompression (gzip, zstd) and, in a
//! file of one column, blank lines read as missing values (issue 21, item 6).
//!
//! - **Compression** is recognised by the file's first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`),
//!   whatever its name says, so `data.csv.gz`, `data.csv.zst` and a zstd file named `data.csv` all
//!   read. The file is decompressed as a stream (flate2, zstd) into a temporary file, which the
//!   readers then treat as any CSV (byte ranges in parallel, bounded line checks), so memory stays
//!   bounded whatever the size. A truncated or damaged stream is an error naming the file and how
//!   many bytes decompressed before it failed.
//! - **Blank lines.** Arrow's CSV reader skips empty lines. In a file of one column an empty line is
//!   that column's empty cell, a missing value, and skipping it would drop the row and shift every
//!   later chunk boundary (`printf 'f2\n7\n8\n\n\n9\n10\n'` read as 4 rows, 0 missing, instead of 6
//!   rows, 2 missing). Such a file is copied with each blank line (outside quotes) written as `""`,
//!   an empty field, which arrow reads as null. In files of several columns an empty line is not a
//!   row (it has too few fields) and stays skipped, as pandas does.
//!
//! Errors and tables always name the user's file, never the temporary copy.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::TableError;

/// How a file's bytes are compressed, by their magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

impl Compression {
    /// The compression of `path`, from its first four bytes.
    ///
    /// # Errors
    /// [`TableError::Io`] when the file cannot be opened or read.
    pub fn of(path: &Path) -> Result<Self, TableError> {
        let mut magic = [0u8; 4];
        let mut file = File::open(path).map_err(io(path))?;
        let mut n = 0;
        while n < magic.len() {
            match file.read(&mut magic[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
        Ok(match &magic[..n] {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_error(path: &Path, message: String) -> TableError {
    TableError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// A decompressing reader over `path`.
///
/// # Errors
/// [`TableError::Io`] when it cannot be opened; [`TableError::Read`] when a zstd header is bad.
pub fn open_decompressed(path: &Path) -> Result<Box<dyn Read>, TableError> {
    let file = File::open(path).map_err(io(path))?;
    Ok(match Compression::of(path)? {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(file)
                .map_err(|e| read_error(path, format!("not a readable zstd stream: {e}")))?,
        ),
    })
}

/// A CSV file ready for the readers: the user's file itself, or a prepared copy.
#[derive(Debug)]
pub struct CsvSource {
    original: PathBuf,
    prepared: Option<(tempfile::TempDir, PathBuf)>,
}

impl CsvSource {
    /// Prepares `path`: decompresses it if it is compressed, and writes blank lines as empty
    /// fields if it has one column.
    ///
    /// # Errors
    /// [`TableError::Io`] when it cannot be read or the copy cannot be written;
    /// [`TableError::Read`] for a truncated or damaged compressed stream, naming the file and the
    /// decompressed bytes read before the failure.
    pub fn prepare(path: &Path) -> Result<Self, TableError> {
        let compression = Compression::of(path)?;
        let mut reader = BufReader::with_capacity(1 << 20, open_decompressed(path)?);
        let mut header = Vec::new();
        read_line(&mut reader, &mut header, path, compression, 0)?;
        let one_column = !header.contains(&b',') && !header.is_empty();
        if compression == Compression::None && !one_column {
            return Ok(Self {
                original: path.to_path_buf(),
                prepared: None,
            });
        }
        if compression == Compression::None && !has_blank_line(path)? {
            return Ok(Self {
                original: path.to_path_buf(),
                prepared: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("driftwatch-csv-")
            .tempdir()
            .map_err(io(path))?;
        let copy = dir.path().join("prepared.csv");
        let out = File::create(&copy).map_err(io(&copy))?;
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&header).map_err(io(&copy))?;
        let mut written = header.len() as u64;
        let mut line = Vec::new();
        let mut in_quotes = header.iter().filter(|&&b| b == b'"').count() % 2 == 1;
        // Blank lines wait for the next line: the file's last line, when blank, is the end of
        // the file (an editor's extra newline), not a missing value.
        let mut blanks: Vec<&'static [u8]> = Vec::new();
        loop {
            line.clear();
            if read_line(&mut reader, &mut line, path, compression, written)? == 0 {
                break;
            }
            written += line.len() as u64;
            let blank = match line.as_slice() {
                b"\n" => Some(&b"\n"[..]),
                b"\r\n" => Some(&b"\r\n"[..]),
                _ => None,
            };
            if let (true, Some(end), false) = (one_column, blank, in_quotes) {
                blanks.push(end);
                continue;
            }
            for end in blanks.drain(..) {
                out.write_all(b"\"\"").map_err(io(&copy))?;
                out.write_all(end).map_err(io(&copy))?;
            }
            in_quotes ^= line.iter().filter(|&&b| b == b'"').count() % 2 == 1;
            out.write_all(&line).map_err(io(&copy))?;
        }
        // All but the last trailing blank line are missing values.
        blanks.pop();
        for end in blanks {
            out.write_all(b"\"\"").map_err(io(&copy))?;
            out.write_all(end).map_err(io(&copy))?;
        }
        out.flush().map_err(io(&copy))?;
        Ok(Self {
            original: path.to_path_buf(),
            prepared: Some((dir, copy)),
        })
    }

    /// The file the readers should open.
    pub fn path(&self) -> &Path {
        self.prepared
            .as_ref()
            .map_or(self.original.as_path(), |(_, p)| p.as_path())
    }

    /// `error` as the user's file's: the copy's path replaced by the original's.
    pub fn rename_error(&self, error: TableError) -> TableError {
        if self.prepared.is_none() {
            return error;
        }
        match error {
            TableError::Io { source, .. } => TableError::Io {
                path: self.original.clone(),
                source,
            },
            TableError::EmptyFile { what, .. } => TableError::EmptyFile {
                path: self.original.clone(),
                what,
            },
            TableError::Read { message, .. } => TableError::Read {
                path: self.original.clone(),
                message,
            },
        }
    }

    /// The user's file.
    pub fn original(&self) -> &Path {
        &self.original
    }
}

/// Reads one line (with its end) into `line`; 0 at the end. A decompression failure names the
/// file and the decompressed bytes before it.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    path: &Path,
    compression: Compression,
    before: u64,
) -> Result<usize, TableError> {
    reader.read_until(b'\n', line).map_err(|e| {
        if compression == Compression::None {
            io(path)(e)
        } else {
            read_error(
                path,
                format!(
                    "the {} stream is truncated or damaged after {} decompressed bytes: {e}",
                    compression.name(),
                    before + line.len() as u64
                ),
            )
        }
    })
}

/// Whether a plain file has an empty line after its header (one pass with `memchr`).
fn has_blank_line(path: &Path) -> Result<bool, TableError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut block = vec![0u8; 1 << 20];
    // The last two bytes of the previous blocks (a CRLF blank line may straddle blocks) and
    // whether the header has ended.
    let (mut previous, mut previous2, mut past_header) = (0u8, 0u8, false);
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(path)(e)),
        };
        for i in memchr::memchr_iter(b'\n', &block[..n]) {
            let before = if i == 0 { previous } else { block[i - 1] };
            let before2 = match i {
                0 => previous2,
                1 => previous,
                _ => block[i - 2],
            };
            if past_header && (before == b'\n' || (before == b'\r' && before2 == b'\n')) {
                return Ok(true);
            }
            past_header = true;
        }
        previous2 = if n >= 2 { block[n - 2] } else { previous };
        previous = block[n - 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn prepared(path: &Path) -> Vec<u8> {
        let source = CsvSource::prepare(path).unwrap();
        std::fs::read(source.path()).unwrap()
    }

    #[test]
    fn blank_lines_of_a_one_column_file_become_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "one.csv", b"f2\n7\n8\n\n\n9\n10\n");
        assert_eq!(prepared(&p), b"f2\n7\n8\n\"\"\n\"\"\n9\n10\n");
        // CRLF, and a blank line inside a quoted field is part of the value.
        let p = write(dir.path(), "crlf.csv", b"f\r\n1\r\n\r\n\"a\n\nb\"\n");
        assert_eq!(prepared(&p), b"f\r\n1\r\n\"\"\r\n\"a\n\nb\"\n");
        // One trailing blank line ends the file; the blank lines before it are missing values
        // (review L6: it counted as an extra missing row).
        let p = write(dir.path(), "trailing.csv", b"f\n1\n2\n\n");
        assert_eq!(prepared(&p), b"f\n1\n2\n");
        let p = write(dir.path(), "trailing2.csv", b"f\n1\n\n\n");
        assert_eq!(prepared(&p), b"f\n1\n\"\"\n");
        // Several columns: left as it is (no copy).
        let p = write(dir.path(), "two.csv", b"a,b\n1,2\n\n3,4\n");
        let source = CsvSource::prepare(&p).unwrap();
        assert_eq!(source.path(), p.as_path());
        // One column without blank lines: no copy either.
        let p = write(dir.path(), "plain.csv", b"f\n1\n2\n");
        assert_eq!(CsvSource::prepare(&p).unwrap().path(), p.as_path());
    }

    /// Review L6: a CRLF blank line whose `\r\n` straddles the 1 MiB scan blocks was missed, and
    /// the row silently dropped.
    #[test]
    fn a_crlf_blank_line_across_scan_blocks_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"f\r\n".to_vec();
        // Lines of "1\r\n" up to just before the block boundary, so that the blank line's
        // "\r\n" follows "\n" at bytes 1 MiB - 1 and 1 MiB.
        while bytes.len() + 3 < (1 << 20) - 1 {
            bytes.extend_from_slice(b"1\r\n");
        }
        while bytes.len() < (1 << 20) - 1 {
            bytes.insert(3, b'0');
        }
        assert_eq!(&bytes[bytes.len() - 1..], b"\n");
        bytes.extend_from_slice(b"\r\n2\r\n");
        let p = write(dir.path(), "crlf-boundary.csv", &bytes);
        assert!(has_blank_line(&p).unwrap());
    }

    #[test]
    fn gzip_and_zstd_are_recognised_by_their_bytes_and_truncation_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = b"a,b\n1,x\n2,y\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&csv).unwrap();
        let gz = gz.finish().unwrap();
        let p = write(dir.path(), "data.csv.gz", &gz);
        assert_eq!(Compression::of(&p).unwrap(), Compression::Gzip);
        assert_eq!(prepared(&p), csv);
        // A zstd file named .csv.
        let zst = zstd::encode_all(csv.as_slice(), 3).unwrap();
        let p = write(dir.path(), "data.csv", &zst);
        assert_eq!(Compression::of(&p).unwrap(), Compression::Zstd);
        assert_eq!(prepared(&p), csv);
        // Truncated gzip: an error naming the file, never a silently short table.
        let p = write(dir.path(), "cut.csv.gz", &gz[..gz.len() / 2]);
        let err = CsvSource::prepare(&p).unwrap_err().to_string();
        assert!(
            err.contains("cut.csv.gz") && err.contains("gzip stream is truncated or damaged"),
            "{err}"
        );
    }
}
