//! The Kafka source against a real Kafka-protocol broker (tansu): exact counts and committed
//! offsets, dead letters (E22, E23), and two consumers sharing a group.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collector::batcher::{BatchConfig, SchemaRegistry, SourceBatch};
use collector::decode::Encoding;
use collector::kafka::{self, KafkaConfig, KafkaSource, TopicConfig, TopicRole};
use collector::offsets::SourceOffsets;
use collector::replay::{self, ReplayOptions, Target};
use collector::telemetry::CollectorMetrics;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::{Broker, TlsBroker, eventually};
use tokio::sync::mpsc;

/// What the stand-in analyzer absorbed.
#[derive(Default)]
struct Absorbed {
    rows_by_model: BTreeMap<String, u64>,
    offsets: BTreeSet<(String, i32, i64)>,
}

/// Stands in for the analyzer: absorbs batches (counts rows, records offsets), acknowledges them
/// and marks the tracker's state durable, as a checkpoint would.
fn absorb(
    mut rx: mpsc::Receiver<SourceBatch>,
    tracker: collector::offsets::OffsetTracker,
) -> Arc<Mutex<Absorbed>> {
    let seen = Arc::new(Mutex::new(Absorbed::default()));
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            {
                let mut s = seen.lock().unwrap();
                *s.rows_by_model.entry(batch.model.clone()).or_default() +=
                    batch.batch.num_rows() as u64;
                for (tp, o) in batch.offsets() {
                    s.offsets.insert((tp.topic.clone(), tp.partition, *o));
                }
            }
            batch.acknowledge();
            let snapshot = tracker.snapshot();
            tracker.mark_durable(&snapshot);
        }
    });
    out
}

fn config(broker: &Broker, group: &str, topics: Vec<TopicConfig>) -> KafkaConfig {
    let mut c: KafkaConfig = serde_json::from_value(serde_json::json!({
        "brokers": broker.address(),
        "group_id": group,
        "topics": [],
        "commit_interval": "200ms",
        "drain_timeout": "10s",
    }))
    .unwrap();
    c.topics = topics;
    c
}

fn json_topic(name: &str) -> TopicConfig {
    TopicConfig {
        name: name.into(),
        encoding: Encoding::Json,
        role: None,
        mapping: Default::default(),
        dead_letter_topic: None,
    }
}

fn start(config: KafkaConfig) -> (KafkaSource, Arc<Mutex<Absorbed>>) {
    // The source's logs, shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("collector=debug,rdkafka=info")
        .try_init();
    let (tx, rx) = mpsc::channel(8);
    let batch = BatchConfig {
        max_events: 1000,
        max_wait: Duration::from_millis(100),
        channel_capacity: 8,
    };
    let source = kafka::start(
        config,
        batch,
        SchemaRegistry::default(),
        tx,
        SourceOffsets::default(),
        CollectorMetrics::default(),
    )
    .unwrap();
    let seen = absorb(rx, source.tracker().clone());
    (source, seen)
}

/// Committed offsets of `group`, per partition `0..partitions` of `topic` (-1 for none).
///
/// The end offsets the tests compare them with come from the producer's delivery reports (the
/// offsets the broker assigned): tansu 0.6 answers ListOffsets(latest) with the base offset of a
/// partition's last record batch, not one past its last record, so `fetch_watermarks` is not a
/// usable end offset against it.
fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    committed_with(broker, group, topic, partitions, &[])
}

/// [`committed`] through a client with the extra librdkafka `settings` (e.g. TLS).
fn committed_with(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: i32,
    settings: &[(&str, &str)],
) -> Vec<i64> {
    let consumer: BaseConsumer = client(broker, settings)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(
            |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            },
        )
        .collect()
}

/// The end offsets of partitions `0..partitions` from a replay's delivery reports.
fn ends(summary: &replay::ReplaySummary, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| summary.partition_ends.get(&p).copied().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_loan_replay_is_absorbed_exactly_and_fully_committed() {
    let broker = Broker::start();
    broker.create_topic("predictions", 3).await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
    let options = ReplayOptions::new(data, "car-loan");
    let events = replay::events_from_file(&options, 0).unwrap();
    assert_eq!(events.len(), 50_000);
    let target = Target::Kafka {
        brokers: broker.address().to_string(),
        topic: "predictions".into(),
    };
    let summary = replay::send(events, &target, &options, &replay::Quiet)
        .await
        .unwrap();
    assert_eq!(summary.sent, 50_000);

    let (source, seen) = start(config(&broker, "g-exact", vec![json_topic("predictions")]));
    eventually("50,000 events absorbed", Duration::from_secs(300), || {
        seen.lock().unwrap().rows_by_model.get("car-loan").copied() == Some(50_000)
    })
    .await;
    let end = ends(&summary, 3);
    assert_eq!(end.iter().sum::<i64>(), 50_000, "{end:?}");
    eventually(
        "committed offsets at the end of every partition",
        Duration::from_secs(60),
        || {
            let c = committed(&broker, "g-exact", "predictions", 3);
            // Shown only when the test fails.
            eprintln!(
                "committed {c:?}, end {end:?}, tracker {:?}",
                source.tracker().snapshot()
            );
            c == end
        },
    )
    .await;
    source.shutdown();
    let s = seen.lock().unwrap();
    assert_eq!(
        s.rows_by_model,
        BTreeMap::from([("car-loan".to_string(), 50_000)])
    );
    assert_eq!(s.offsets.len(), 50_000, "every message absorbed once");
    assert_eq!(committed(&broker, "g-exact", "predictions", 3), end);
}

/// A client configuration for `broker` with the extra librdkafka `settings`.
fn client(broker: &Broker, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", broker.address());
    for (k, v) in settings {
        config.set(*k, *v);
    }
    config
}

async fn produce(broker: &Broker, topic: &str, payloads: &[&[u8]]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .unwrap();
    for p in payloads {
        producer
            .send(
                FutureRecord::<(), [u8]>::to(topic).payload(p),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

fn read_all(
    broker: &Broker,
    topic: &str,
    expected: usize,
) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    read_all_with(broker, topic, expected, &[])
}

/// [`read_all`] through a client with the extra librdkafka `settings` (e.g. TLS).
fn read_all_with(
    broker: &Broker,
    topic: &str,
    expected: usize,
    settings: &[(&str, &str)],
) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let consumer: BaseConsumer = client(broker, settings)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

const VALID_1: &[u8] = br#"{"timestamp": 1, "model": "m", "features": {"x": 1.0}}"#;
const VALID_2: &[u8] = br#"{"timestamp": 2, "model": "m", "features": {"x": 2.0}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e22_poison_message_is_dead_lettered_and_the_partition_keeps_flowing() {
    let broker = Broker::start();
    broker.create_topic("events", 1).await;
    produce(
        &broker,
        "events",
        &[VALID_1, &[0xde, 0xad, 0xbe, 0xef, 0x00], VALID_2],
    )
    .await;
    let (source, seen) = start(config(&broker, "g-poison", vec![json_topic("events")]));
    eventually("two valid events absorbed", Duration::from_secs(60), || {
        seen.lock().unwrap().rows_by_model.get("m").copied() == Some(2)
    })
    .await;
    eventually(
        "committed offset moves to 3",
        Duration::from_secs(60),
        || committed(&broker, "g-poison", "events", 1) == vec![3],
    )
    .await;
    source.shutdown();
    let dead = read_all(&broker, "events.dlq", 1);
    assert_eq!(dead.len(), 1);
    let (payload, headers) = &dead[0];
    assert_eq!(payload, &vec![0xde, 0xad, 0xbe, 0xef, 0x00]);
    assert_eq!(headers["driftwatch-reason"], "wrong_encoding");
    assert_eq!(headers["driftwatch-source-topic"], "events");
    assert_eq!(headers["driftwatch-source-partition"], "0");
    assert_eq!(headers["driftwatch-source-offset"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e23_wrong_encoding_either_way_is_dead_lettered_and_consumption_continues() {
    let broker = Broker::start();
    broker.create_topic("json-events", 1).await;
    broker.create_topic("seldon.ns.model.m.inputs", 1).await;
    let frame = collector_test_frame();
    // A protobuf frame on a JSON topic, then a valid event.
    produce(&broker, "json-events", &[&frame, VALID_1]).await;
    // Plain JSON on an OIP v2 protobuf topic.
    produce(&broker, "seldon.ns.model.m.inputs", &[VALID_2]).await;
    let oip = TopicConfig {
        name: "seldon.ns.model.m.inputs".into(),
        encoding: Encoding::OipV2Protobuf,
        role: Some(TopicRole::Request),
        mapping: Default::default(),
        dead_letter_topic: Some("oip.dlq".into()),
    };
    let (source, seen) = start(config(
        &broker,
        "g-enc",
        vec![json_topic("json-events"), oip],
    ));
    eventually(
        "the valid event after the bad frame is absorbed",
        Duration::from_secs(60),
        || seen.lock().unwrap().rows_by_model.get("m").copied() == Some(1),
    )
    .await;
    let dead_json = read_all(&broker, "json-events.dlq", 1);
    let dead_oip = read_all(&broker, "oip.dlq", 1);
    source.shutdown();
    assert_eq!(dead_json[0].1["driftwatch-reason"], "wrong_encoding");
    assert!(
        dead_json[0].1["driftwatch-error"].contains("expects JSON"),
        "{:?}",
        dead_json[0].1
    );
    assert_eq!(dead_oip[0].1["driftwatch-reason"], "wrong_encoding");
    assert!(
        dead_oip[0].1["driftwatch-error"].contains("expects OIP v2 protobuf"),
        "{:?}",
        dead_oip[0].1
    );
}

/// A small OIP v2 protobuf request frame (field 1 `model_name` = "m", field 3 `id` = "1").
fn collector_test_frame() -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Req {
        #[prost(string, tag = "1")]
        model_name: String,
        #[prost(string, tag = "3")]
        id: String,
    }
    Req {
        model_name: "m".into(),
        id: "1".into(),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_partitions_and_a_stopped_one_hands_over_without_loss() {
    let broker = Broker::start();
    broker.create_topic("shared", 3).await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
    let mut options = ReplayOptions::new(data, "car-loan");
    options.limit = Some(6_000);
    // Paced (about 3 s), and produced only once both members share the partitions, so that one
    // is stopped while the stream flows. (Produced up front, the first member to be assigned
    // could read the whole topic before the split and the other would never see an event.)
    options.rate = Some(2_000.0);
    let events = replay::events_from_file(&options, 0).unwrap();
    let target = Target::Kafka {
        brokers: broker.address().to_string(),
        topic: "shared".into(),
    };

    let (a, seen_a) = start(config(&broker, "g-shared", vec![json_topic("shared")]));
    let (b, seen_b) = start(config(&broker, "g-shared", vec![json_topic("shared")]));
    eventually(
        "both consumers have partitions",
        Duration::from_secs(60),
        || !a.tracker().assigned().is_empty() && !b.tracker().assigned().is_empty(),
    )
    .await;
    let (pa, pb) = (a.tracker().assigned(), b.tracker().assigned());
    assert_eq!(pa.len() + pb.len(), 3, "{pa:?} {pb:?}");
    assert!(
        pa.iter().all(|p| !pb.contains(p)),
        "a partition is owned twice: {pa:?} {pb:?}"
    );
    let producer =
        tokio::spawn(async move { replay::send(events, &target, &options, &replay::Quiet).await });
    // Stop one consumer part way; its partitions move to the other.
    eventually("some events absorbed", Duration::from_secs(120), || {
        seen_a.lock().unwrap().offsets.len() > 100
    })
    .await;
    a.shutdown();
    eventually(
        "the survivor owns all partitions",
        Duration::from_secs(60),
        || b.tracker().assigned().len() == 3,
    )
    .await;
    let summary = producer.await.unwrap().unwrap();
    let end = ends(&summary, 3);
    assert_eq!(end.iter().sum::<i64>(), 6_000, "{end:?}");
    eventually(
        "every message absorbed by one or the other",
        Duration::from_secs(300),
        || {
            let union: BTreeSet<_> = seen_a
                .lock()
                .unwrap()
                .offsets
                .union(&seen_b.lock().unwrap().offsets)
                .cloned()
                .collect();
            union.len() == 6_000
        },
    )
    .await;
    eventually("committed at the end", Duration::from_secs(60), || {
        committed(&broker, "g-shared", "shared", 3) == end
    })
    .await;
    b.shutdown();
    let total: u64 = [&seen_a, &seen_b]
        .iter()
        .map(|s| s.lock().unwrap().rows_by_model.values().sum::<u64>())
        .sum();
    assert!(total >= 6_000, "at least once: {total}");
}

/// TLS to the broker (issue 3: settings passed through to librdkafka): the replay producer, the
/// source's consumer and commits, and its dead-letter producer all work through a TLS listener
/// whose certificate is verified against the test CA; a producer that trusts another CA is
/// refused at the handshake and delivers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_carries_replay_consumption_commits_and_dead_letters() {
    let tls = TlsBroker::start();
    let broker = &tls.broker;
    let ca = tls.ca_pem.to_str().unwrap();
    let settings = [("security.protocol", "ssl"), ("ssl.ca.location", ca)];
    broker.create_topic_with("secure", 2, &settings).await;

    // replay's producer set to trust another CA: every handshake fails, nothing is delivered.
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
    let before = tls.failed_handshakes.load(Ordering::SeqCst);
    let mut untrusting = ReplayOptions::new(data, "car-loan");
    untrusting.limit = Some(1);
    untrusting.kafka_client = [
        ("security.protocol", "ssl"),
        ("ssl.ca.location", tls.other_ca_pem.to_str().unwrap()),
        ("message.timeout.ms", "3000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let target = Target::Kafka {
        brokers: broker.address().to_string(),
        topic: "secure".into(),
    };
    let refused = replay::send(
        replay::events_from_file(&untrusting, 0).unwrap(),
        &target,
        &untrusting,
        &replay::Quiet,
    )
    .await;
    assert!(refused.is_err(), "delivered without trusting the CA");
    assert!(tls.failed_handshakes.load(Ordering::SeqCst) > before);

    // 5,000 car_loan events through `replay`'s producer over TLS.
    let mut options = ReplayOptions::new(data, "car-loan");
    options.limit = Some(5_000);
    options.kafka_client = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let events = replay::events_from_file(&options, 0).unwrap();
    let summary = replay::send(events, &target, &options, &replay::Quiet)
        .await
        .unwrap();
    assert_eq!(summary.sent, 5_000);
    // One poison message on partition 0 after them, for the dead-letter producer.
    let producer: FutureProducer = client(broker, &settings).create().unwrap();
    let delivery = producer
        .send(
            FutureRecord::<(), [u8]>::to("secure")
                .partition(0)
                .payload(&[0xde, 0xad, 0xbe, 0xef][..]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let poison_offset = delivery.offset;
    assert_eq!(delivery.partition, 0);
    let mut end = ends(&summary, 2);
    end[0] = end[0].max(poison_offset + 1);

    let mut consume = config(broker, "g-tls", vec![json_topic("secure")]);
    consume.client = options.kafka_client.clone();
    let (source, seen) = start(consume);
    eventually(
        "5,000 events absorbed over TLS",
        Duration::from_secs(120),
        || seen.lock().unwrap().rows_by_model.get("car-loan").copied() == Some(5_000),
    )
    .await;
    eventually(
        "committed offsets at the end of both partitions",
        Duration::from_secs(60),
        || committed_with(broker, "g-tls", "secure", 2, &settings) == end,
    )
    .await;
    source.shutdown();
    assert_eq!(
        seen.lock().unwrap().offsets.len(),
        5_000,
        "each absorbed once"
    );

    let dead = read_all_with(broker, "secure.dlq", 1, &settings);
    assert_eq!(
        dead.len(),
        1,
        "the poison message is dead-lettered over TLS"
    );
    assert_eq!(dead[0].0, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        dead[0].1["driftwatch-source-offset"],
        poison_offset.to_string()
    );
    assert!(
        tls.handshakes.load(Ordering::SeqCst) >= 3,
        "clients connected through TLS"
    );
}

/// How the replay producer groups messages into record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batching {
    /// replay's own settings: many messages per record batch.
    Default,
    /// `batch.num.messages=1`: every message is its own record batch, so every offset starts one
    /// (what the tests that resume inside a backlog need from tansu 0.6, see
    /// [`a_fetch_from_inside_a_record_batch_starts_at_that_offset`]).
    OneRecordPerBatch,
}

/// Creates `topic` with one partition and replays the first `rows` car_loan analysis rows into
/// it, grouped as `batching` says; returns how many messages the broker acknowledged.
async fn replay_into_one_partition(
    broker: &Broker,
    topic: &str,
    rows: usize,
    batching: Batching,
) -> u64 {
    broker.create_topic(topic, 1).await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
    let mut options = ReplayOptions::new(data, "car-loan");
    options.limit = Some(rows);
    if batching == Batching::OneRecordPerBatch {
        options
            .kafka_client
            .insert("batch.num.messages".into(), "1".into());
    }
    let events = replay::events_from_file(&options, 0).unwrap();
    let target = Target::Kafka {
        brokers: broker.address().to_string(),
        topic: topic.into(),
    };
    replay::send(events, &target, &options, &replay::Quiet)
        .await
        .unwrap()
        .sent
}

/// Backpressure against the real broker: a slow downstream keeps the batch channel full, so the
/// source pauses and resumes its partition many times while a backlog of 20,000 messages is read
/// (as after a restart, E21). Every message is absorbed exactly once: librdkafka resumes a paused
/// partition from the last message handed to the application, and none may be skipped.
///
/// Each message is its own record batch: tansu 0.6 answers a fetch from inside a record batch
/// with the next batch, and with replay's default batching every pause lost the rest of its
/// batch (offsets 1800-2047, 4048-4095, ..., 9 pauses, 1,632 to 1,832 of 20,000 messages),
/// which no seek before or after `resume` avoided. Kafka returns the batch holding the offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_pauses_and_resumes_without_skipping_a_message() {
    let broker = Broker::start();
    assert_eq!(
        replay_into_one_partition(&broker, "backlog", 20_000, Batching::OneRecordPerBatch).await,
        20_000
    );

    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("collector=debug,rdkafka=info")
        .try_init();
    let (tx, mut rx) = mpsc::channel(8);
    let batch = BatchConfig {
        max_events: 200,
        max_wait: Duration::from_millis(100),
        channel_capacity: 8,
    };
    let source = kafka::start(
        config(&broker, "g-backpressure", vec![json_topic("backlog")]),
        batch,
        SchemaRegistry::default(),
        tx,
        SourceOffsets::default(),
        CollectorMetrics::default(),
    )
    .unwrap();
    let tracker = source.tracker().clone();
    // Rows, distinct offsets, offsets seen twice, the most batches queued at once.
    let seen = Arc::new(Mutex::new((0u64, BTreeSet::new(), 0u64, 0usize)));
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            {
                let mut s = seen.lock().unwrap();
                s.0 += batch.batch.num_rows() as u64;
                for (_, o) in batch.offsets() {
                    if !s.1.insert(*o) {
                        s.2 += 1;
                    }
                }
                s.3 = s.3.max(rx.len() + 1);
            }
            batch.acknowledge();
            let snapshot = tracker.snapshot();
            tracker.mark_durable(&snapshot);
            // Slower than the source: the channel stays full and the source pauses.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Until every event is in, or nothing more came for 20 s.
    let (mut last, mut since) = (0, std::time::Instant::now());
    loop {
        let rows = out.lock().unwrap().0;
        if rows >= 20_000 || since.elapsed() > Duration::from_secs(20) {
            break;
        }
        if rows != last {
            (last, since) = (rows, std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let anything read twice or late arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    source.shutdown();
    let s = out.lock().unwrap();
    let missing: Vec<i64> = (0..20_000).filter(|o| !s.1.contains(o)).collect();
    let runs: Vec<(i64, i64)> = missing.iter().fold(Vec::new(), |mut r, &o| {
        match r.last_mut() {
            Some((_, end)) if *end + 1 == o => *end = o,
            _ => r.push((o, o)),
        }
        r
    });
    eprintln!("missing runs {runs:?}");
    assert_eq!(
        s.0,
        20_000,
        "events absorbed; {} offsets missing, from {:?} to {:?}; most batches queued {}",
        missing.len(),
        missing.first(),
        missing.last(),
        s.3
    );
    assert_eq!(s.1.len(), 20_000, "distinct offsets absorbed");
    assert_eq!(s.1.last(), Some(&19_999));
    assert_eq!(s.2, 0, "offsets absorbed twice");
    assert_eq!(s.3, 8, "the channel was full (the source paused)");
}

/// Fills a fresh broker's one-partition topic with 5,000 messages grouped as `batching` says, then
/// assigns a plain librdkafka consumer at each offset of [`PROBE_STARTS`] and asserts that the
/// first message it receives is the one at that offset.
async fn assert_fetches_start_where_assigned(batching: Batching) {
    let broker = Broker::start();
    assert_eq!(
        replay_into_one_partition(&broker, "probe", 5_000, batching).await,
        5_000
    );
    let mut first = Vec::new();
    for start in PROBE_STARTS {
        let consumer: BaseConsumer = client(&broker, &[])
            .set("group.id", format!("probe-{start}"))
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("probe", 0, Offset::Offset(start))
            .unwrap();
        consumer.assign(&list).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                first.push((start, m.offset()));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "nothing from {start}");
        }
    }
    let expected: Vec<(i64, i64)> = PROBE_STARTS.iter().map(|&s| (s, s)).collect();
    assert_eq!(first, expected, "(assigned at, first offset delivered)");
}

/// Offsets the probes below assign at: batch starts and offsets inside replay's default batches.
const PROBE_STARTS: [i64; 6] = [0, 1800, 2000, 2047, 2048, 3000];

/// The broker itself, with a plain librdkafka consumer: a partition assigned at an offset inside a
/// record batch delivers that offset first, as Kafka does. tansu 0.6 fails it: assigned at 1800,
/// 2000 or 2047 it delivers 2048 first, and at 3000 it delivers 3072 (it answers with the next
/// record batch). This is what lost messages after a backpressure pause or a restart from a
/// checkpoint watermark inside a batch, and why the tests that resume inside a backlog (above, and
/// E21 in tests/e2e_kafka.rs) produce one record per batch
/// ([`a_fetch_from_any_offset_starts_there_when_each_record_is_its_own_batch`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tansu 0.6 answers a fetch from inside a record batch with the next batch"]
async fn a_fetch_from_inside_a_record_batch_starts_at_that_offset() {
    assert_fetches_start_where_assigned(Batching::Default).await;
}

/// The tests' way around the tansu 0.6 fetch bug: with one record per batch, a partition assigned
/// at any offset delivers that offset first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_any_offset_starts_there_when_each_record_is_its_own_batch() {
    assert_fetches_start_where_assigned(Batching::OneRecordPerBatch).await;
}
