//! What an operator watches, on the admin listener only (`--admin-listen`): Prometheus
//! metrics (prometheus-client, OpenMetrics text) and the detailed health. The public
//! `/healthz` says only status, seq and expiry: pool and limiter counts would tell an
//! outsider whether someone else is checking a number right now.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::latency::Latency;
use super::limits::Stats;
use crate::common::version;
use crate::trust::verify::unix_now;

/// A label value known when hosho is compiled.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Name(&'static str);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: Name,
}

/// A guarantor, by its id in `issuers.toml` (`default` without one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issuer {
    issuer: String,
}

/// The hosho that runs: its version and the commit it was built from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: Name,
    commit: Name,
}

/// One guarantor as the metrics report it.
#[derive(Debug, Clone, Default)]
pub(crate) struct IssuerState {
    pub id: String,
    /// A manifest is served and has not expired.
    pub in_service: bool,
    /// The manifest served: seq, expiry (Unix seconds), entries.
    pub manifest: Option<(u64, u64, usize)>,
}

/// Every metric of the daemon.
pub(crate) struct Metrics {
    registry: Registry,
    verifications: Family<Outcome, Counter>,
    latency: Latency,
    kdf_workers: Gauge,
    kdf_in_use: Gauge,
    limiter_keys: Gauge,
    limiter_full_refusals: Counter,
    ceiling_refusals: Counter,
    redis_up: Gauge,
    redis_failures: Counter,
    in_service: Family<Issuer, Gauge>,
    manifest_seq: Family<Issuer, Gauge>,
    manifest_expires_in: Family<Issuer, Gauge>,
    manifest_entries: Family<Issuer, Gauge>,
    audit_dropped: Counter,
    audit_write_errors: Counter,
}

/// The daemon's state as the metrics report it, read when `/metrics` is asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub kdf_workers: usize,
    pub kdf_in_use: usize,
    pub limiter: Stats,
    /// Every guarantor, in the order served.
    pub issuers: Vec<IssuerState>,
    pub audit_dropped: u64,
    pub audit_write_errors: u64,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hosho");
        let verifications = Family::<Outcome, Counter>::default();
        registry.register(
            "verifications",
            "Verification attempts by how they ended",
            verifications.clone(),
        );
        // 1 ms to about 16 s: refusals take microseconds, a KDF about 20 ms, a full pool waits.
        let latency = Latency::exponential(0.001, 2.0, 15);
        registry.register(
            "verification_seconds",
            "Time from a request to its outcome",
            latency.clone(),
        );
        // Always 1: the labels say which hosho runs (replicas on different builds show).
        let build = Family::<Build, Gauge>::default();
        build
            .get_or_create(&Build {
                version: Name(version::VERSION),
                commit: Name(version::COMMIT),
            })
            .set(1);
        registry.register(
            "build_info",
            "The hosho that runs: its version and commit",
            build,
        );
        let metrics = Metrics {
            verifications,
            latency,
            kdf_workers: Gauge::default(),
            kdf_in_use: Gauge::default(),
            limiter_keys: Gauge::default(),
            limiter_full_refusals: Counter::default(),
            ceiling_refusals: Counter::default(),
            redis_up: Gauge::default(),
            redis_failures: Counter::default(),
            in_service: Family::default(),
            manifest_seq: Family::default(),
            manifest_expires_in: Family::default(),
            manifest_entries: Family::default(),
            audit_dropped: Counter::default(),
            audit_write_errors: Counter::default(),
            registry,
        };
        metrics.register_state()
    }

    /// The gauges and counters read from the daemon's state at each scrape.
    fn register_state(mut self) -> Metrics {
        /// One metric of the daemon's state.
        enum State<'m> {
            Gauge(&'m Gauge),
            Counter(&'m Counter),
            PerIssuer(&'m Family<Issuer, Gauge>),
        }
        let state = [
            ("kdf_workers", "Threads of the KDF pool", State::Gauge(&self.kdf_workers)),
            ("kdf_in_use", "KDF jobs running or waiting", State::Gauge(&self.kdf_in_use)),
            ("limiter_keys", "Budgets the limiter tracks", State::Gauge(&self.limiter_keys)),
            ("limiter_full_refusals", "Attempts answered busy because the limiter's table was full of budgets still being spent", State::Counter(&self.limiter_full_refusals)),
            ("limit_ceiling_refusals", "Attempts refused because a number's failures from all networks reached the ceiling", State::Counter(&self.ceiling_refusals)),
            ("issuer_in_service", "1 while a guarantor's manifest is served and not expired, 0 while its numbers are out of service", State::PerIssuer(&self.in_service)),
            ("manifest_seq", "Sequence number of the guarantor's manifest served", State::PerIssuer(&self.manifest_seq)),
            ("manifest_expires_in_seconds", "Seconds until the guarantor's manifest served expires (negative once expired)", State::PerIssuer(&self.manifest_expires_in)),
            ("manifest_entries", "Certificates in the guarantor's manifest served", State::PerIssuer(&self.manifest_entries)),
            ("audit_dropped_lines", "Audit lines that could not be written", State::Counter(&self.audit_dropped)),
            ("audit_write_errors", "Audit writes the disk refused (full, gone); verification goes on", State::Counter(&self.audit_write_errors)),
            ("limits_redis_up", "1 while budgets are shared in Redis, 0 while this replica counts alone (degraded)", State::Gauge(&self.redis_up)),
            ("limits_redis_failures", "Exchanges with Redis that failed or timed out", State::Counter(&self.redis_failures)),
        ];
        for (name, help, metric) in state {
            match metric {
                State::Gauge(g) => self.registry.register(name, help, g.clone()),
                State::Counter(c) => self.registry.register(name, help, c.clone()),
                State::PerIssuer(f) => self.registry.register(name, help, f.clone()),
            }
        }
        self
    }

    /// Counts one verification attempt, `outcome` as the audit log names it.
    pub(crate) fn observe(&self, outcome: &'static str, elapsed: Duration) {
        let labels = Outcome {
            outcome: Name(outcome),
        };
        self.verifications.get_or_create(&labels).inc();
        self.latency.observe(elapsed);
    }

    /// The OpenMetrics text of every metric, with the state of `now`.
    pub(crate) fn render(&self, now: &Snapshot) -> String {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let stats = &now.limiter;
        self.kdf_workers.set(as_i64(now.kdf_workers as u64));
        self.kdf_in_use.set(as_i64(now.kdf_in_use as u64));
        self.limiter_keys.set(as_i64(stats.keys as u64));
        self.redis_up
            .set(i64::from(stats.redis_up.unwrap_or(false)));
        for issuer in &now.issuers {
            let labels = Issuer {
                issuer: issuer.id.clone(),
            };
            let in_service = i64::from(issuer.in_service);
            self.in_service.get_or_create(&labels).set(in_service);
            // A guarantor with no manifest has none of these: no stale figures.
            let Some((seq, expires_at, entries)) = issuer.manifest else {
                for family in [
                    &self.manifest_seq,
                    &self.manifest_expires_in,
                    &self.manifest_entries,
                ] {
                    family.remove(&labels);
                }
                continue;
            };
            self.manifest_seq.get_or_create(&labels).set(as_i64(seq));
            let expires_in = as_i64(expires_at) - as_i64(unix_now());
            self.manifest_expires_in
                .get_or_create(&labels)
                .set(expires_in);
            self.manifest_entries
                .get_or_create(&labels)
                .set(as_i64(entries as u64));
        }
        for (counter, value) in [
            (&self.audit_dropped, now.audit_dropped),
            (&self.audit_write_errors, now.audit_write_errors),
            (&self.limiter_full_refusals, stats.full_refusals),
            (&self.ceiling_refusals, stats.ceiling_refusals),
            (&self.redis_failures, stats.redis_failures),
        ] {
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "メトリクスを書き出せません");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_by_outcome() {
        let m = Metrics::new();
        m.observe("not_found", Duration::from_millis(20));
        m.observe("not_found", Duration::from_millis(22));
        m.observe("valid", Duration::from_millis(21));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).expect("encode");
        assert!(
            text.contains("hosho_verifications_total{outcome=\"not_found\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hosho_verifications_total{outcome=\"valid\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hosho_verification_seconds_count 3"),
            "{text}"
        );
    }
}
