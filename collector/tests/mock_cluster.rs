//! The Kafka source against librdkafka's in-process mock cluster: checks that need no broker
//! process (the real-broker tests are in kafka.rs): exact absorption and commits, and
//! backpressure across rebalances.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collector::batcher::{BatchConfig, SchemaRegistry, SourceBatch};
use collector::decode::Encoding;
use collector::kafka::{self, KafkaConfig, KafkaSource, TopicConfig};
use collector::offsets::SourceOffsets;
use collector::telemetry::CollectorMetrics;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use telemetry::Metrics;
use test_support::eventually;
use tokio::sync::mpsc;

const TOPIC: &str = "predictions";

fn event(i: usize) -> Vec<u8> {
    format!(r#"{{"timestamp": {i}, "model": "m", "features": {{"x": {i}.0}}}}"#).into_bytes()
}

/// Produces `per_partition` events to each of `partitions`; returns the end offsets.
async fn produce(servers: &str, partitions: i32, per_partition: usize) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let mut ends = vec![0; partitions as usize];
    for p in 0..partitions {
        for i in 0..per_partition {
            let payload = event(i);
            let d = producer
                .send(
                    FutureRecord::<(), [u8]>::to(TOPIC)
                        .partition(p)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            ends[p as usize] = d.offset + 1;
        }
    }
    ends
}

fn config(servers: &str) -> KafkaConfig {
    let mut c: KafkaConfig = serde_json::from_value(serde_json::json!({
        "brokers": servers,
        "group_id": "g",
        "topics": [],
        "commit_interval": "200ms",
        "drain_timeout": "5s",
    }))
    .unwrap();
    c.topics = vec![TopicConfig {
        name: TOPIC.into(),
        encoding: Encoding::Json,
        role: None,
        mapping: Default::default(),
        dead_letter_topic: None,
    }];
    c.dead_letter = false;
    c
}

/// The stand-in analyzer: absorbs (records partition and offset of every event) while `open`,
/// holds batches in the channel while not.
struct Absorber {
    offsets: Arc<Mutex<BTreeSet<(i32, i64)>>>,
    open: Arc<AtomicBool>,
}

/// Starts the source with a channel of `channel_capacity` batches of at most `batch_events`
/// events, and the absorber open or not.
fn start(
    servers: &str,
    channel_capacity: usize,
    batch_events: usize,
    open: bool,
) -> (KafkaSource, Absorber, Registry) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("collector=debug")
        .try_init();
    let (tx, mut rx) = mpsc::channel::<SourceBatch>(channel_capacity);
    let mut registry = Registry::default();
    let metrics = CollectorMetrics::register(&mut registry, &());
    let source = kafka::start(
        config(servers),
        BatchConfig {
            max_events: batch_events,
            max_wait: Duration::from_millis(50),
            channel_capacity,
        },
        SchemaRegistry::default(),
        tx,
        SourceOffsets::default(),
        metrics,
    )
    .unwrap();
    let absorber = Absorber {
        offsets: Arc::default(),
        open: Arc::new(AtomicBool::new(open)),
    };
    let (offsets, open, tracker) = (
        absorber.offsets.clone(),
        absorber.open.clone(),
        source.tracker().clone(),
    );
    tokio::spawn(async move {
        loop {
            while !open.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let Some(batch) = rx.recv().await else { break };
            {
                let mut seen = offsets.lock().unwrap();
                for (tp, o) in batch.offsets() {
                    seen.insert((tp.partition, *o));
                }
            }
            batch.acknowledge();
            let snapshot = tracker.snapshot();
            tracker.mark_durable(&snapshot);
        }
    });
    (source, absorber, registry)
}

fn committed(servers: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "g")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(TOPIC, p);
    }
    let c = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap();
    (0..partitions)
        .map(|p| match c.find_partition(TOPIC, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

fn metric(registry: &Registry, name: &str) -> Option<f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Also the regression test for a last offset that stayed uncommitted: the worker completed a
/// message's own hold after sending its batch, so when the batch was acknowledged first the
/// partition's last offset became absorbed after the durable mark (committed 399 of 400 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_absorbed_and_committed_to_the_end() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    let servers = cluster.bootstrap_servers();
    let ends = produce(&servers, 3, 400).await;
    assert_eq!(ends, vec![400, 400, 400]);
    let (source, absorber, _registry) = start(&servers, 8, 100, true);
    eventually("1,200 events absorbed", Duration::from_secs(60), || {
        absorber.offsets.lock().unwrap().len() == 1_200
    })
    .await;
    eventually("committed at the end", Duration::from_secs(30), || {
        committed(&servers, 3) == ends
    })
    .await;
    source.shutdown();
    let seen = absorber.offsets.lock().unwrap();
    for p in 0..3 {
        assert_eq!(
            seen.iter().filter(|(q, _)| *q == p).count(),
            400,
            "partition {p}"
        );
    }
}

/// Backpressure across rebalances: the source pauses on a full channel, a second member joins
/// (a partition moves away while the source is paused), the source drains and resumes, the member
/// leaves (the partition comes back), and every event is absorbed and committed. (It passes with or
/// without `post_rebalance` applying the pause state, so it does not prove that step is needed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_moved_while_paused_are_read_to_the_end() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 2, 1).unwrap();
    let servers = cluster.bootstrap_servers();
    let ends = produce(&servers, 2, 200).await;

    // A channel of 8 one-event batches and a closed absorber: the source fills it and pauses (one
    // event per batch leaves nothing in the batcher that could block on the full channel).
    let (source, absorber, registry) = start(&servers, 8, 1, false);
    eventually("the source pauses", Duration::from_secs(60), || {
        metric(&registry, "driftwatch_consumer_paused") == Some(1.0)
    })
    .await;

    // A second member joins: one partition is revoked from the paused source.
    let other: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", "g")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .create()
        .unwrap();
    other.subscribe(&[TOPIC]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while other.assignment().unwrap().count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the second member got no partition"
        );
        let _ = other.poll(Duration::from_millis(50));
    }
    // Make the other member hold its partition without reading it.
    other.pause(&other.assignment().unwrap()).unwrap();

    // The source resumes what it still holds and drains.
    absorber.open.store(true, Ordering::SeqCst);
    eventually("the source resumes", Duration::from_secs(60), || {
        metric(&registry, "driftwatch_consumer_paused") == Some(0.0)
    })
    .await;

    // The second member leaves: the revoked partition comes back to the source.
    other.unsubscribe();
    drop(other);
    eventually("all 400 events absorbed", Duration::from_secs(90), || {
        absorber.offsets.lock().unwrap().len() == 400
    })
    .await;
    eventually("committed at the end", Duration::from_secs(30), || {
        committed(&servers, 2) == ends
    })
    .await;
    source.shutdown();
}
