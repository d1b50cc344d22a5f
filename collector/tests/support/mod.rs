//! A real Kafka-protocol broker for tests: tansu 0.6 on a free loopback port.
//!
//! The binary comes from `DRIFTWATCH_TANSU_BIN`, else `$HOME/.cache/driftwatch/tools/bin/tansu`
//! (where `scripts/install-test-services.sh` installs it), else `PATH`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use tokio_openssl::SslStream;

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

pub use test_support::{eventually, free_port};

impl Broker {
    /// Starts tansu with in-memory storage. One broker test runs at a time: on two cores,
    /// concurrent brokers and consumers starved each other into session timeouts and rebalances
    /// that stalled a consumer group for minutes (about one run in three).
    pub fn start() -> Self {
        let port = free_port();
        Self::start_advertising(port, &format!("127.0.0.1:{port}"))
    }

    /// Starts tansu listening (plaintext) on `127.0.0.1:port` and advertising `advertised` to
    /// clients in its metadata.
    fn start_advertising(port: u16, advertised: &str) -> Self {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let address = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let bin = tansu_bin();
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &format!("tcp://{address}"), "--advertised-listener-url", &format!("tcp://{advertised}")])
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
        self.create_topic_with(topic, partitions, &[]).await
    }

    /// Creates `topic` through a client with the extra librdkafka `settings` (e.g. TLS).
    pub async fn create_topic_with(&self, topic: &str, partitions: i32, settings: &[(&str, &str)]) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        for (k, v) in settings {
            config.set(*k, *v);
        }
        let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
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

/// A broker reached only over TLS: tansu 0.6 accepts `--cert`/`--key` but serves plaintext
/// (its TLS acceptor is never used), so the TLS listener is a terminating front, as a TLS proxy
/// in front of a broker is deployed: clients connect to [`TlsBroker::address`] with TLS, the front
/// forwards the bytes to tansu's plaintext port, and tansu advertises the front's address in its
/// metadata, so every connection a client opens goes through TLS.
pub struct TlsBroker {
    /// The broker behind the front; its `address` is the TLS front's `127.0.0.1:port`.
    pub broker: Broker,
    /// PEM of the CA that signed the front's certificate (`ssl.ca.location`).
    pub ca_pem: PathBuf,
    /// A PEM certificate the front's certificate does not chain to (a wrong CA for clients).
    pub other_ca_pem: PathBuf,
    /// Completed TLS handshakes.
    pub handshakes: Arc<AtomicU64>,
    /// Failed TLS handshakes (the client refused the certificate, or spoke plaintext).
    pub failed_handshakes: Arc<AtomicU64>,
    _certs: tempfile::TempDir,
}

impl TlsBroker {
    /// Starts tansu on a plaintext port and the TLS front on another, with a fresh CA and a
    /// server certificate for `127.0.0.1` and `localhost`, valid for a day.
    pub fn start() -> Self {
        let certs = tempfile::tempdir().unwrap();
        let (ca_cert, ca_key) = certificate("driftwatch test CA", None);
        let (leaf, leaf_key) = certificate("127.0.0.1", Some((&ca_cert, &ca_key)));
        let (other_ca, _) = certificate("some other CA", None);
        let ca_pem = certs.path().join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.to_pem().unwrap()).unwrap();
        let other_ca_pem = certs.path().join("other-ca.pem");
        std::fs::write(&other_ca_pem, other_ca.to_pem().unwrap()).unwrap();

        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_private_key(&leaf_key).unwrap();
        acceptor.set_certificate(&leaf).unwrap();
        acceptor.add_extra_chain_cert(ca_cert.clone()).unwrap();
        let acceptor = Arc::new(acceptor.build());

        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_address = front.local_addr().unwrap().to_string();
        let tansu_port = free_port();
        let mut broker = Broker::start_advertising(tansu_port, &front_address);
        let upstream = std::mem::replace(&mut broker.address, front_address);

        let handshakes = Arc::new(AtomicU64::new(0));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let (ok, failed) = (handshakes.clone(), failed_handshakes.clone());
        front.set_nonblocking(true).unwrap();
        // Its own thread and runtime: the front outlives any one test runtime's tasks and
        // ends with the test process.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let front = tokio::net::TcpListener::from_std(front).unwrap();
                while let Ok((client, _)) = front.accept().await {
                    let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                    let (ok, failed) = (ok.clone(), failed.clone());
                    tokio::spawn(async move {
                        let mut tls =
                            SslStream::new(Ssl::new(acceptor.context()).unwrap(), client).unwrap();
                        if Pin::new(&mut tls).accept().await.is_err() {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        ok.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut broker) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                        }
                    });
                }
            });
        });
        Self {
            broker,
            ca_pem,
            other_ca_pem,
            handshakes,
            failed_handshakes,
            _certs: certs,
        }
    }
}

/// A P-256 certificate for `name` (also the IP SAN when it parses as one, plus `localhost`),
/// signed by `issuer` or self-signed as a CA.
fn certificate(name: &str, issuer: Option<(&X509, &PKey<Private>)>) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", name).unwrap();
    let subject = subject.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_serial())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&subject).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    match issuer {
        None => {
            builder.set_issuer_name(&subject).unwrap();
            builder
                .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            builder.sign(&key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            builder.set_issuer_name(ca.subject_name()).unwrap();
            let mut san = SubjectAlternativeName::new();
            san.dns("localhost");
            if name.parse::<std::net::IpAddr>().is_ok() {
                san.ip(name);
            } else {
                san.dns(name);
            }
            let san = san.build(&builder.x509v3_context(Some(ca), None)).unwrap();
            builder.append_extension(san).unwrap();
            builder.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    (builder.build(), key)
}

fn rand_serial() -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (std::process::id() << 8) ^ NEXT.fetch_add(1, Ordering::SeqCst) as u32
}
