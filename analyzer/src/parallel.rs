//! Work spread over the cores one feature at a time, and the progress it reports.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::AnalyzerError;

/// Receives progress of long work; every method has a no-op default.
pub trait Progress: Sync {
    /// Work of `total` units named `what` begins.
    fn start(&self, _what: &str, _total: u64) {}
    /// `units` more are done.
    fn advance(&self, _units: u64) {}
    /// The work is done.
    fn finish(&self) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// `work(i)` for every feature index `i < count`, in order, computed by one worker per core pulling
/// indices from a shared counter; `progress` advances by one per feature.
///
/// # Errors
/// Every feature's error, collected (one bad feature does not hide the others).
pub(crate) fn per_feature<T: Send>(
    count: usize,
    progress: &dyn Progress,
    work: impl Fn(usize) -> Result<T, AnalyzerError> + Sync,
) -> Result<Vec<T>, AnalyzerError> {
    let next = AtomicUsize::new(0);
    /// Per feature: not yet computed, or its result.
    type Slot<T> = Option<Result<T, AnalyzerError>>;
    let results: Mutex<Vec<Slot<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let r = work(i);
                    progress.advance(1);
                    if let Ok(mut guard) = results.lock() {
                        guard[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for r in results {
        match r {
            Some(Ok(s)) => out.push(s),
            Some(Err(e)) => errors.push(e),
            None => errors.push(AnalyzerError::Query(
                "a feature worker stopped unexpectedly".into(),
            )),
        }
    }
    AnalyzerError::collect(errors)?;
    Ok(out)
}
