//! Decode + batch throughput for car_loan events from pre-encoded messages in memory, one core.
//!
//! `cargo bench -p driftwatch-collector --bench decode` (criterion prints events per second).
//! `decode_and_batch` is [`Batcher::push_json`] (events borrowed from the message straight into
//! column builders); `decode_owned_then_batch` is the owned path the Kafka source and HTTP ingest
//! use (whole [`collector::PredictionEvent`]s first), measured side by side.

/// The allocator of the `driftwatch` binary, so the benchmark measures what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use collector::batcher::{BatchConfig, Batcher, SchemaRegistry, SourceBatch};
use collector::decode::json::{decode_each, decode_events};
use collector::replay::{ReplayOptions, events_from_file};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn messages() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
    let events = events_from_file(&ReplayOptions::new(path, "car-loan"), 0).unwrap();
    events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect()
}

/// Every message through a fresh batcher by `push`, then a flush; returns the rows batched.
fn batch_all(
    messages: &[Vec<u8>],
    mut push: impl FnMut(&mut Batcher, &[u8]) -> Vec<SourceBatch>,
) -> usize {
    let mut batcher = Batcher::new(
        BatchConfig::default(),
        SchemaRegistry::default(),
        None,
        "memory",
    );
    let mut rows = 0;
    for m in messages {
        rows += push(&mut batcher, m)
            .iter()
            .map(|b| b.batch.num_rows())
            .sum::<usize>();
    }
    rows += batcher
        .flush()
        .iter()
        .map(|b| b.batch.num_rows())
        .sum::<usize>();
    assert_eq!(rows, messages.len());
    rows
}

fn decode(c: &mut Criterion) {
    let messages = messages();
    let mut group = c.benchmark_group("collector");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("decode_json_car_loan_50000", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &messages {
                n += decode_events(m).unwrap().events.len();
            }
            n
        })
    });
    group.bench_function("decode_each_json_car_loan_50000", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &messages {
                decode_each(m, |_, _| n += 1).unwrap();
            }
            n
        })
    });
    group.bench_function("decode_and_batch_car_loan_50000", |b| {
        b.iter(|| {
            batch_all(&messages, |batcher, m| {
                batcher.push_json(m, &[]).unwrap().ready
            })
        })
    });
    // The owned path (HTTP ingest, replay): whole events first, then the batcher.
    group.bench_function("decode_owned_then_batch_car_loan_50000", |b| {
        b.iter(|| {
            batch_all(&messages, |batcher, m| {
                batcher.push(decode_events(m).unwrap().events, &[])
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = decode
}
criterion_main!(benches);
