//! The lines of a CSV file before any parsing: [`check_csv_bytes`] refuses a NUL byte (binary
//! data, a sparse file) or a line longer than [`MAX_CSV_LINE_BYTES`], naming the line and byte
//! offset, in one bounded pass.

use std::io::Read;
use std::path::Path;

use super::io::{open, read_error};
use crate::error::TableError;

/// Longest line a CSV file may have, in bytes (16 MiB). A longer one is an error before any of
/// the file is parsed, so a binary or sparse file given as CSV cannot make the reader buffer it
/// whole. The check runs per 1 MiB block, so a line is refused once it is known to be longer:
/// lines up to 1 MiB beyond the limit may pass.
pub const MAX_CSV_LINE_BYTES: usize = 16 << 20;

/// Checks that `path` looks like text a CSV reader can take in bounded memory: no NUL byte (binary
/// data, or the holes of a sparse file) and no line longer than [`MAX_CSV_LINE_BYTES`]. One
/// sequential pass with `memchr` (several GB/s), in 1 MiB blocks.
///
/// # Errors
/// [`TableError::Read`] naming the byte offset (and the line) of the first problem;
/// [`TableError::Io`] when the file cannot be read.
pub fn check_csv_bytes(path: &Path) -> Result<(), TableError> {
    scan_csv_bytes(path, false)
}

/// [`check_csv_bytes`] over the whole file, or up to the end of its first line (the header).
pub(super) fn scan_csv_bytes(path: &Path, header_only: bool) -> Result<(), TableError> {
    let mut file = open(path)?;
    let mut block = vec![0u8; 1 << 20];
    let (mut offset, mut line_start, mut line) = (0u64, 0u64, 1u64);
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(TableError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        for i in memchr::memchr2_iter(b'\n', 0, &block[..n]) {
            let at = offset + i as u64;
            if block[i] == 0 {
                return Err(read_error(
                    path,
                    format!(
                        "line {line}: a NUL byte at byte offset {at}: this is binary data (or a sparse file), not CSV text"
                    ),
                ));
            }
            if header_only {
                return Ok(());
            }
            line += 1;
            line_start = at + 1;
        }
        offset += n as u64;
        if offset - line_start > MAX_CSV_LINE_BYTES as u64 {
            return Err(read_error(
                path,
                format!(
                    "line {line}: longer than {MAX_CSV_LINE_BYTES} bytes (it starts at byte offset {line_start}): not a CSV file of prediction logs"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::options;
    use super::super::{column_names, read_table};
    use super::*;

    /// Issue 19, finding 6: `analyze` on a 5 GB sparse file named `.csv` grew to 6 GB with no
    /// error. A NUL byte or an over-long line is now an error naming the file and byte offset,
    /// found in one bounded pass before parsing.
    #[test]
    fn sparse_binary_and_one_line_files_are_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("sparse.csv");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(1 << 32)
            .unwrap();
        for err in [
            read_table(&sparse, &options()).unwrap_err().to_string(),
            column_names(&sparse).unwrap_err().to_string(),
        ] {
            assert!(err.contains(&sparse.display().to_string()), "{err}");
            assert!(err.contains("line 1: a NUL byte at byte offset 0"), "{err}");
        }

        let binary = dir.path().join("binary.csv");
        std::fs::write(&binary, b"a,b\n1,2\n3,\x004\n").unwrap();
        let err = read_table(&binary, &options()).unwrap_err().to_string();
        assert!(
            err.contains("line 3: a NUL byte at byte offset 10"),
            "{err}"
        );

        let long = dir.path().join("long.csv");
        let mut text = b"a,b\n1,2\n".to_vec();
        text.resize(text.len() + MAX_CSV_LINE_BYTES + 2, b'7');
        std::fs::write(&long, &text).unwrap();
        let err = read_table(&long, &options()).unwrap_err().to_string();
        assert!(
            err.contains("line 3: longer than 16777216 bytes (it starts at byte offset 8)"),
            "{err}"
        );
    }
}
