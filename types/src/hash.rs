//! The one stable hash of driftwatch: 64-bit FNV-1a.
//!
//! Used where a hash is persisted or shown (alert fingerprints, checkpoint file names), so it must
//! not depend on the Rust version or a per-process seed as `std`'s hasher does. Source: Fowler,
//! Noll and Vo, "FNV hash", the FNV-1a variant with the 64-bit offset basis and prime.

/// 64-bit FNV-1a of `bytes`.
///
/// ```
/// assert_eq!(types::hash::fnv1a_64([]), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(types::hash::fnv1a_64(*b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a_64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .into_iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}
