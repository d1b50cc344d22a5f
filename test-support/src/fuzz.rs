//! The fuzz harnesses' common parts: a case budget read from `DRIFTWATCH_FUZZ_CASES` and a
//! mutation strategy (byte flips, insertions, deletions, truncation) over valid seed inputs.
//!
//! ```
//! use test_support::fuzz::mutate;
//! // Flip bits 0x21 of byte 0 ('a' -> '@'), insert 'x' at 1, cut at 3.
//! assert_eq!(mutate(b"abcd", &[(0, 0, 0x20), (1, 1, b'x'), (3, 3, 0)]), b"@xb".to_vec());
//! ```

use proptest::prelude::*;

/// Cases per property: `DRIFTWATCH_FUZZ_CASES`, else `default` (the suite's bounded budget).
pub fn cases(default: u32) -> u32 {
    std::env::var("DRIFTWATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One edit of a seed: (kind, position, byte); the position is taken modulo the input's length.
pub type Edit = (u8, usize, u8);

/// Applies `edits` to `seed` in order: kind 0 flips bits of a byte (`byte | 1`, so never a no-op),
/// 1 inserts `byte`, 2 deletes a byte, 3 cuts the input at the position.
pub fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(kind, at, byte) in edits {
        let at = if out.is_empty() { 0 } else { at % out.len() };
        match kind % 4 {
            0 if !out.is_empty() => out[at] ^= byte | 1,
            1 => out.insert(at, byte),
            2 if !out.is_empty() => {
                out.remove(at);
            }
            3 => out.truncate(at),
            _ => {}
        }
    }
    out
}

/// Between `min` and 11 edits.
pub fn edits(min: usize) -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), min..12)
}
