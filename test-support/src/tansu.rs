//! A real Kafka-protocol broker for tests: tansu 0.6 with in-memory storage on a loopback port,
//! killed on drop. The collector's Kafka tests and the workspace's end-to-end tests both start
//! their brokers here.
//!
//! The binary comes from `DRIFTWATCH_TANSU_BIN`, else `$HOME/.cache/driftwatch/tools/bin/tansu`
//! (where `scripts/install-test-services.sh` installs it), else `tansu` on `PATH`.
//!
//! One broker runs at a time in a test process: [`Broker::start`] waits while another [`Broker`]
//! of the process is alive. On two cores, concurrent brokers and consumers starved each other
//! into session timeouts and rebalances that stalled a consumer group for minutes (about one run
//! in three).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::wait::free_port;

/// How long a starting broker may take to listen.
const LISTEN_WITHIN: Duration = Duration::from_secs(60);

/// A running tansu broker, killed on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// Where tansu listens (plaintext): `127.0.0.1:port`.
    listener: String,
    /// What tansu advertises in its metadata, and where clients bootstrap.
    address: String,
    _dir: tempfile::TempDir,
    /// Held while the broker runs; released after the child is killed (fields drop after
    /// [`Drop::drop`]).
    _serial: MutexGuard<'static, ()>,
}

/// The tansu binary: `DRIFTWATCH_TANSU_BIN`, else the installed cache copy, else `PATH`.
///
/// # Panics
/// When none of them has it, telling how to install it.
fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DRIFTWATCH_TANSU_BIN") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/driftwatch/tools/bin/tansu");
    if cached.exists() {
        return cached;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "tansu not found in DRIFTWATCH_TANSU_BIN, {} or PATH; install it with \
             scripts/install-test-services.sh (scripts/test.sh does) or set DRIFTWATCH_TANSU_BIN",
            cached.display()
        )
    })
}

impl Broker {
    /// Starts tansu on a free port of 127.0.0.1, advertising that address.
    ///
    /// # Panics
    /// As [`Broker::start_advertising`].
    pub fn start() -> Self {
        let port = free_port();
        Self::start_advertising(port, &format!("127.0.0.1:{port}"))
    }

    /// Starts tansu listening (plaintext) on `127.0.0.1:port` and advertising `advertised`
    /// (`host:port`) to clients in its metadata, e.g. the address of a TLS front that forwards
    /// to the port. Waits first while another broker of this process runs (see the module
    /// documentation).
    ///
    /// # Panics
    /// When the binary is not found or cannot start (the message tells how to install it), or
    /// when it exits or does not listen within 60 s.
    pub fn start_advertising(port: u16, advertised: &str) -> Self {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let listener = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().expect("a temporary directory for tansu");
        let bin = tansu_bin();
        let mut child = Command::new(&bin)
            .args(["broker", "--listener-url", &format!("tcp://{listener}")])
            .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the test broker {}: {e}; install it with \
                     scripts/install-test-services.sh (scripts/test.sh does) or set \
                     DRIFTWATCH_TANSU_BIN",
                    bin.display()
                )
            });
        wait_for_listener(&bin, &listener, &mut child);
        Self {
            child,
            listener,
            address: advertised.to_string(),
            _dir: dir,
            _serial: serial,
        }
    }

    /// The address clients bootstrap to (`host:port`, what tansu advertises): `127.0.0.1:port`
    /// for [`Broker::start`].
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The port of [`Broker::address`].
    ///
    /// # Panics
    /// When the advertised address has no numeric port.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the advertised address {}", self.address))
    }

    /// Where tansu itself listens (plaintext `127.0.0.1:port`); the same as
    /// [`Broker::address`] unless started with [`Broker::start_advertising`] of another address.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// `kafka://<address>/<topic>`, the form `driftwatch replay --to` takes.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.address)
    }

    /// Creates `topic` with `partitions` partitions (replication 1).
    ///
    /// # Panics
    /// When the admin client cannot be made or the broker refuses the topic.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]).await
    }

    /// Creates `topic` with `partitions` partitions through an admin client bootstrapping to
    /// [`Broker::address`] with the extra librdkafka `settings` (e.g. TLS).
    ///
    /// # Panics
    /// When the admin client cannot be made or the broker refuses the topic.
    pub async fn create_topic_with(&self, topic: &str, partitions: i32, settings: &[(&str, &str)]) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        for (k, v) in settings {
            config.set(*k, *v);
        }
        let admin: AdminClient<DefaultClientContext> =
            config.create().expect("a Kafka admin client");
        let result = admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
        for r in result {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }

    /// [`Broker::create_topic`] for tests without an async runtime (blocks the thread).
    ///
    /// # Panics
    /// As [`Broker::create_topic`].
    pub fn create_topic_blocking(&self, topic: &str, partitions: i32) {
        futures::executor::block_on(self.create_topic(topic, partitions));
    }
}

/// Waits until `listener` accepts connections.
///
/// # Panics
/// When the child exits first or 60 s pass.
fn wait_for_listener(bin: &Path, listener: &str, child: &mut Child) {
    let deadline = Instant::now() + LISTEN_WITHIN;
    while std::net::TcpStream::connect(listener).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "tansu ({}) exited with {status} before listening on {listener}",
                bin.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "tansu did not listen on {listener} within {LISTEN_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
