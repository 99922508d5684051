//! `hosho_verification_seconds`: a histogram that every worker updates at once without a
//! lock. prometheus-client's own histogram takes a mutex on each observation, and under a
//! flood both workers queued on it. Here each thread counts in a shard of its own
//! (atomic counters), and a scrape sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

const SHARDS: usize = 8;

/// The next thread's shard.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// The shard of the calling thread, out of `count` (at most [`SHARDS`] threads share none).
pub(crate) fn thread_shard(count: usize) -> usize {
    SHARD.with(|s| *s) % count.max(1)
}

/// A handle: clones count in the same buckets (one is registered, one observes).
#[derive(Debug, Clone)]
pub(crate) struct Latency(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    /// Upper bounds in seconds, ascending; the last bucket (+Inf) is implied.
    bounds: Vec<f64>,
    shards: Vec<Shard>,
}

#[derive(Debug)]
struct Shard {
    /// One counter per bucket, +Inf last.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Latency {
    /// `count` buckets from `start` seconds, each `factor` times the one before.
    pub(crate) fn exponential(start: f64, factor: f64, count: u16) -> Latency {
        let bounds: Vec<f64> = (0..count)
            .map(|i| start * factor.powi(i32::from(i)))
            .collect();
        let shards = (0..SHARDS)
            .map(|_| Shard {
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_nanos: AtomicU64::new(0),
            })
            .collect();
        Latency(Arc::new(Buckets { bounds, shards }))
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        let shard = &self.0.shards[thread_shard(SHARDS)];
        let seconds = elapsed.as_secs_f64();
        let bucket = self.0.bounds.partition_point(|b| *b < seconds);
        shard.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Per bucket (upper bound, count), +Inf last; the count and the sum in seconds.
    fn totals(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let Buckets { bounds, shards } = &*self.0;
        let buckets: Vec<(f64, u64)> = bounds
            .iter()
            .copied()
            .chain([f64::MAX])
            .enumerate()
            .map(|(i, bound)| {
                let n = shards.iter().map(|s| s.counts[i].load(Ordering::Relaxed));
                (bound, n.sum())
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let nanos: u64 = shards
            .iter()
            .map(|s| s.sum_nanos.load(Ordering::Relaxed))
            .sum();
        (buckets, count, nanos as f64 / 1e9)
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        let (buckets, count, sum) = self.totals();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_from_many_threads_are_all_counted_in_their_buckets() {
        let latency = Latency::exponential(0.001, 2.0, 3);
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let latency = latency.clone();
                std::thread::spawn(move || {
                    for ms in [0, 1, 2, 3, 4, 100] {
                        latency.observe(Duration::from_millis(ms));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("thread"));
        let (buckets, count, sum) = latency.totals();
        // Bounds 1, 2, 4 ms and +Inf: 0 and 1 ms; 2; 3 and 4; 100.
        let counts: Vec<u64> = buckets.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [24, 12, 24, 12]);
        assert_eq!(count, 72);
        assert!((sum - 12.0 * 0.110).abs() < 1e-9, "{sum}");
    }
}
