//! Issue 19, item 3: SIGTERM is honoured within `server.shutdown_timeout` in every state: idle,
//! with a Kafka broker that does not answer, in the middle of an HTTP flood, and while ingest is
//! backpressured (a one-batch channel, 503s), each with `[checkpoint]` and the write-ahead log.
//! Before, SIGTERM during the unknown-model flood was not honoured within 30 s.
//!
//! The bound checked is the configured `shutdown_timeout` (3 s) plus a fixed allowance for process
//! start-up noise on a loaded CI machine; it is a correctness bound (the timeout is honoured), not
//! a performance figure.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::*;

const SHUTDOWN_TIMEOUT_S: u64 = 3;
/// Allowance over `shutdown_timeout` (process exit, the final checkpoint's fsyncs).
const ALLOWANCE: Duration = Duration::from_secs(7);

fn config(dir: &std::path::Path, port: u16, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_timeout = \"{SHUTDOWN_TIMEOUT_S}s\"\n\
         [checkpoint]\ndir = \"{}\"\ninterval = \"200ms\"\n{extra}",
        dir.join("checkpoint").display()
    )
}

/// Sends SIGTERM and returns how long the process took to exit, and whether it exited cleanly.
fn sigterm(service: &mut Service) -> (Duration, bool) {
    let began = Instant::now();
    Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            return (began.elapsed(), status.success());
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "no exit 120 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `threads` clients posting `body` as fast as they can until `stop`; counts statuses seen.
fn flood(
    port: u16,
    threads: usize,
    body: impl Fn(u64) -> String + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let body = Arc::new(body);
    let handles = (0..threads)
        .map(|t| {
            let stop = stop.clone();
            let sent = sent.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut i = t as u64 * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let b = body(i);
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let req = format!(
                        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                        b.len()
                    );
                    if s.write_all(req.as_bytes()).is_ok() {
                        let mut answer = [0u8; 64];
                        let _ = std::io::Read::read(&mut s, &mut answer);
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    (handles, sent)
}

fn events(model: &str, i: u64, n: u64) -> String {
    let t = chrono::Utc::now().timestamp_millis();
    (0..n)
        .map(|k| {
            format!(
                "{{\"timestamp\":{t},\"model\":\"{model}\",\"features\":{{\"x\":{}}}}}\n",
                i * n + k
            )
        })
        .collect()
}

fn assert_prompt(state: &str, service: &mut Service) {
    let (took, clean) = sigterm(service);
    eprintln!("{state}: exited {took:?} after SIGTERM (clean: {clean})");
    assert!(clean, "{state}: the exit status is not success");
    assert!(
        took <= Duration::from_secs(SHUTDOWN_TIMEOUT_S) + ALLOWANCE,
        "{state}: {took:?} from SIGTERM to exit, shutdown_timeout is {SHUTDOWN_TIMEOUT_S} s"
    );
}

#[test]
fn sigterm_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut service = serve(dir.path(), &config(dir.path(), port, ""), port);
    assert_prompt("idle", &mut service);
}

#[test]
fn sigterm_with_a_kafka_broker_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A port nothing listens on.
    let dead = free_port();
    let extra = format!(
        "[kafka]\nbrokers = \"127.0.0.1:{dead}\"\n[[kafka.topics]]\nname = \"predictions\"\n"
    );
    let mut service = serve(dir.path(), &config(dir.path(), port, &extra), port);
    std::thread::sleep(Duration::from_secs(2));
    assert_prompt("kafka broker down", &mut service);
}

#[test]
fn sigterm_in_the_middle_of_a_flood_of_unknown_models() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut service = serve(dir.path(), &config(dir.path(), port, ""), port);
    let stop = Arc::new(AtomicBool::new(false));
    let (handles, sent) = flood(port, 8, |i| events(&format!("m{i}"), i, 1), stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    assert!(sent.load(Ordering::Relaxed) > 0, "the flood is running");
    assert_prompt("unknown-model flood", &mut service);
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn sigterm_while_backpressured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // One batch in flight at a time, one event per batch: the channel is full most of the time.
    let extra = "[batch]\nchannel_capacity = 1\nmax_events = 1\n";
    let mut service = serve(dir.path(), &config(dir.path(), port, extra), port);
    let stop = Arc::new(AtomicBool::new(false));
    let (handles, sent) = flood(port, 8, |i| events("busy", i, 200), stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    assert!(sent.load(Ordering::Relaxed) > 0, "the flood is running");
    assert_prompt("backpressured", &mut service);
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().for_each(|h| h.join().unwrap());
}
