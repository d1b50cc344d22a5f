//! Free ports and bounded waits, shared by the integration tests of every crate. A wait bounds
//! how long a test may hang; it is never a timing assertion.

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, read, released).
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Polls `condition` every 50 ms until it holds.
///
/// # Panics
/// When `within` passes first, naming `what`.
pub async fn eventually(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the async `probe` every 200 ms until it yields a value, and returns it.
///
/// # Panics
/// When `within` passes first, naming `what`.
pub async fn eventually_some<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `condition` every 250 ms on this thread until it yields a value, and returns it (for
/// tests that drive processes, without a runtime).
///
/// # Panics
/// When `within` passes first, naming `what`.
pub fn eventually_blocking<T>(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = condition() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
