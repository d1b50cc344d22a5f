//! The TLS front of the test broker: tansu (started by [`test_support::tansu::Broker`]) behind a
//! TLS-terminating proxy, with a fresh test CA.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

pub use test_support::tansu::Broker;
pub use test_support::{eventually, free_port};

/// A broker reached only over TLS: tansu 0.6 accepts `--cert`/`--key` but serves plaintext
/// (its TLS acceptor is never used), so the TLS listener is a terminating front, as a TLS proxy
/// in front of a broker is deployed: clients connect to the broker's [`Broker::address`] with
/// TLS, the front forwards the bytes to tansu's plaintext port, and tansu advertises the front's
/// address in its metadata, so every connection a client opens goes through TLS.
pub struct TlsBroker {
    /// The broker behind the front; its [`Broker::address`] is the TLS front's `127.0.0.1:port`
    /// (what tansu advertises), its [`Broker::listener`] tansu's plaintext port.
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
        let broker = Broker::start_advertising(tansu_port, &front_address);
        let upstream = broker.listener().to_string();

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
