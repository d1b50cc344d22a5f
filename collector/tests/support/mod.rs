//! A real Kafka-protocol broker for tests: tansu 0.6 on a free loopback port.
//!
//! The binary comes from `DRIFTWATCH_TANSU_BIN`, else `$HOME/.cache/driftwatch/tools/bin/tansu`
//! (where `scripts/install-test-services.sh` installs it), else `PATH`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// A running broker, killed on drop.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:port`.
    pub address: String,
    _dir: tempfile::TempDir,
    /// Held while the broker runs (see [`Broker::start`]); released after the child is killed.
    _serial: MutexGuard<'static, ()>,
}

fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DRIFTWATCH_TANSU_BIN") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/driftwatch/tools/bin/tansu");
    if cached.exists() {
        return cached;
    }
    PathBuf::from("tansu")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// Starts tansu with in-memory storage. One broker test runs at a time: on two cores,
    /// concurrent brokers and consumers starved each other into session timeouts and rebalances
    /// that stalled a consumer group for minutes (about one run in three).
    pub fn start() -> Self {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let bin = tansu_bin();
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &format!("tcp://{address}"), "--advertised-listener-url", &format!("tcp://{address}")])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the test broker {}: {e}; install it with scripts/install-test-services.sh \
                     (scripts/test.sh does) or set DRIFTWATCH_TANSU_BIN",
                    bin.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {address} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            address,
            _dir: dir,
            _serial: serial,
        }
    }

    /// Creates `topic` with `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        let result = admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
        for r in result {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `condition` with a generous deadline (bounds the wait, not a performance check).
pub async fn eventually(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
