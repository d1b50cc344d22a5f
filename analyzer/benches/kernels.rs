//! Kernel throughput, next to a plain column sum as the memory-bandwidth yardstick of the same run.
//!
//! `cargo bench -p driftwatch-analyzer --bench kernels` (criterion prints elements per second).

use analyzer::kernels::{
    advance_le, advance_le_scalar, histogram, histogram_scalar, sort_total, sum_lanes,
    sum_lanes_scalar,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const N: usize = 1 << 20;

fn data() -> (Vec<f64>, Vec<f64>) {
    let mut rng = SmallRng::seed_from_u64(6);
    let values: Vec<f64> = (0..N).map(|_| rng.random::<f64>() * 100.0).collect();
    // Decile edges of a uniform [0, 100) sample.
    let edges: Vec<f64> = (0..=10).map(|i| f64::from(i) * 10.0).collect();
    (values, edges)
}

fn kernels(c: &mut Criterion) {
    let (values, edges) = data();
    let mut group = c.benchmark_group("kernels");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("plain_sum_yardstick", |b| {
        b.iter(|| std::hint::black_box(values.iter().sum::<f64>()))
    });
    group.bench_function(BenchmarkId::new("histogram", "simd"), |b| {
        b.iter(|| {
            let mut counts = vec![0u64; edges.len() + 1];
            histogram(&edges, std::hint::black_box(&values), &mut counts);
            counts
        })
    });
    group.bench_function(BenchmarkId::new("histogram", "scalar"), |b| {
        b.iter(|| {
            let mut counts = vec![0u64; edges.len() + 1];
            histogram_scalar(&edges, std::hint::black_box(&values), &mut counts);
            counts
        })
    });
    group.bench_function(BenchmarkId::new("sum_lanes", "simd"), |b| {
        b.iter(|| sum_lanes(std::hint::black_box(&values), None))
    });
    group.bench_function(BenchmarkId::new("sum_lanes", "scalar"), |b| {
        b.iter(|| sum_lanes_scalar(std::hint::black_box(&values), None))
    });
    group.bench_function(BenchmarkId::new("sum_squares", "simd"), |b| {
        b.iter(|| sum_lanes(std::hint::black_box(&values), Some(50.0)))
    });
    group.bench_function(BenchmarkId::new("sum_squares", "scalar"), |b| {
        b.iter(|| sum_lanes_scalar(std::hint::black_box(&values), Some(50.0)))
    });
    // The ECDF walk of a large reference against a small window: long runs to skip.
    let mut reference = values.clone();
    reference.sort_by(f64::total_cmp);
    let window: Vec<f64> = {
        let mut w: Vec<f64> = reference.iter().step_by(200).copied().collect();
        w.sort_by(f64::total_cmp);
        w
    };
    group.bench_function(BenchmarkId::new("ecdf_walk", "simd"), |b| {
        b.iter(|| {
            let mut i = 0;
            for &x in &window {
                i = advance_le(&reference, i, x);
            }
            i
        })
    });
    group.bench_function(BenchmarkId::new("ecdf_walk", "scalar"), |b| {
        b.iter(|| {
            let mut i = 0;
            for &x in &window {
                i = advance_le_scalar(&reference, i, x);
            }
            i
        })
    });
    group.finish();

    // Sorting one chunk's values (100,000, as in `bench/compare`'s chunks): the radix sort of
    // `sort_total` against the comparison sort it replaced.
    let chunk = &values[..100_000];
    let mut group = c.benchmark_group("sort_100000");
    group.throughput(Throughput::Elements(chunk.len() as u64));
    group.bench_function("sort_total_radix", |b| {
        b.iter_batched_ref(
            || chunk.to_vec(),
            |v| sort_total(v),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("sort_unstable_by_total_cmp", |b| {
        b.iter_batched_ref(
            || chunk.to_vec(),
            |v| v.sort_unstable_by(f64::total_cmp),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
