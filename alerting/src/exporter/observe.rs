//! Observing a closed window: [`ModelMetrics::observe_window`] sets the model families from a
//! window report and its raw observations and removes the label sets the window no longer has;
//! [`ModelMetrics::prune`] removes the series not updated for the TTL.

use std::sync::PoisonError;
use std::time::Instant;

use types::drift::Direction;
use types::drift::FeatureDrift;
use types::report::{ClosedWindow, SeriesKey};

use super::events::InvalidValues;
use super::families::ModelMetrics;
use super::labels::InvalidField;
use super::labels::{
    CustomMetricLabels, DriftLabels, ModelLabels, ModelOnlyLabel, SeriesIndex, SeriesLabelSets,
    feature_labels,
};
use telemetry::Emit;

impl ModelMetrics {
    /// Updates the model metrics from one closed window, then removes expired series
    /// ([`ModelMetrics::prune`] with the same `now`).
    ///
    /// - `model_requests_total` grows by `report.requests`;
    /// - every latency (seconds) and confidence is observed; NaN and infinite values are
    ///   rejected and counted in `driftwatch_invalid_values_total{field}` (E18), so a histogram's
    ///   count, sum and buckets always agree;
    /// - per feature and method: `model_data_drift` (the statistic), `model_data_drift_p_value`
    ///   (ks, chi2), `model_data_drift_threshold` (only for methods that voted on this window's
    ///   verdict and whose direction is "drift when above"), `model_feature_drift` (1/0, removed
    ///   while the window is not judged, e.g. insufficient data) and
    ///   `model_feature_missing_ratio`; label sets the previous window had and this one has not
    ///   are removed;
    /// - `model_window_events` is set to `report.requests`.
    ///
    /// The threshold is exported only when the method voted (its `drift` is `Some`), so the
    /// Prometheus rule `model_data_drift > model_data_drift_threshold` never fires on a window
    /// with insufficient data, like the built-in engine.
    ///
    /// `now` is a monotonic wall-clock instant, used only for the series TTL.
    pub fn observe_window(&self, closed: &ClosedWindow, now: Instant) {
        let report = &closed.report;
        let key = &report.key;
        let labels = ModelLabels::from(key);
        self.requests.get_or_create(&labels).inc_by(report.requests);
        {
            let histogram = self.duration.get_or_create(&labels);
            let mut invalid = 0;
            for &v in &closed.latencies_s {
                if v.is_finite() {
                    histogram.observe(v);
                } else {
                    invalid += 1;
                }
            }
            self.emit(InvalidValues {
                field: InvalidField::Latency,
                count: invalid,
            });
        }
        {
            let histogram = self.confidence.get_or_create(&labels);
            let mut invalid = 0;
            for &v in &closed.confidences {
                if v.is_finite() {
                    histogram.observe(v);
                } else {
                    invalid += 1;
                }
            }
            self.emit(InvalidValues {
                field: InvalidField::Confidence,
                count: invalid,
            });
        }
        self.window_events
            .get_or_create(&labels)
            .set(saturating_i64(report.requests));

        let mut next = SeriesLabelSets {
            last_update: Some(now),
            ..SeriesLabelSets::default()
        };
        for fd in &report.drift {
            self.set_feature_drift(key, fd, &mut next);
        }
        for (feature, ratio) in &report.missing_ratio {
            let l = feature_labels(key, feature);
            self.missing_ratio.get_or_create(&l).set(*ratio);
            next.missing.insert(l);
        }
        for (metric, value) in &report.custom {
            // A metric whose query failed or returned NULL has no sample this window.
            let Some(value) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let l = CustomMetricLabels {
                model: key.model.clone(),
                version: key.version.clone(),
                variant: key.variant.clone(),
                metric: metric.clone(),
            };
            self.custom.get_or_create(&l).set(value);
            next.custom.insert(l);
        }

        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = index.series.get(key) {
            self.remove_stale(previous, &next);
        }
        index.series.insert(key.clone(), next);
        self.prune_locked(&mut index, now);
    }

    fn set_feature_drift(&self, key: &SeriesKey, fd: &FeatureDrift, next: &mut SeriesLabelSets) {
        let fl = feature_labels(key, &fd.feature);
        if let Some(q) = fd.quality {
            if q.out_of_reference_rate.is_finite() {
                self.out_of_reference
                    .get_or_create(&fl)
                    .set(q.out_of_reference_rate);
                next.out_of_reference.insert(fl.clone());
            }
            if let Some(surge) = q.missing_surge {
                self.missing_surge.get_or_create(&fl).set(i64::from(surge));
                next.surge.insert(fl.clone());
            }
        }
        if let Some(drift) = fd.drift {
            self.feature_drift.get_or_create(&fl).set(i64::from(drift));
            next.verdict.insert(fl);
        }
        for m in &fd.methods {
            let dl = DriftLabels {
                model: key.model.clone(),
                version: key.version.clone(),
                variant: key.variant.clone(),
                feature: fd.feature.clone(),
                method: m.method.name(),
            };
            if let Some(v) = m.value.filter(|v| v.is_finite()) {
                self.drift.get_or_create(&dl).set(v);
                next.drift.insert(dl.clone());
            }
            if let Some(p) = m.p_value.filter(|v| v.is_finite()) {
                self.drift_p_value.get_or_create(&dl).set(p);
                next.p_value.insert(dl.clone());
            }
            if let Some(t) = m.threshold.filter(|t| {
                m.verdict_method && t.direction == Direction::Above && m.drift.is_some()
            }) {
                self.drift_threshold.get_or_create(&dl).set(t.value);
                next.threshold.insert(dl);
            }
        }
    }

    /// Removes the label sets `previous` has and `next` has not.
    fn remove_stale(&self, previous: &SeriesLabelSets, next: &SeriesLabelSets) {
        for l in previous.drift.difference(&next.drift) {
            self.drift.remove(l);
        }
        for l in previous.p_value.difference(&next.p_value) {
            self.drift_p_value.remove(l);
        }
        for l in previous.threshold.difference(&next.threshold) {
            self.drift_threshold.remove(l);
        }
        for l in previous.verdict.difference(&next.verdict) {
            self.feature_drift.remove(l);
        }
        for l in previous.missing.difference(&next.missing) {
            self.missing_ratio.remove(l);
        }
        for l in previous.surge.difference(&next.surge) {
            self.missing_surge.remove(l);
        }
        for l in previous.out_of_reference.difference(&next.out_of_reference) {
            self.out_of_reference.remove(l);
        }
        for l in previous.custom.difference(&next.custom) {
            self.custom.remove(l);
        }
    }

    /// Removes every series of a `(model, version, variant)` whose last closed window was
    /// observed `series_ttl` or more before `now`, from every family, and
    /// `driftwatch_late_events_total{model}` of models without late events for as long.
    /// Returns the number of `(model, version, variant)` removed.
    pub fn prune(&self, now: Instant) -> usize {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        self.prune_locked(&mut index, now)
    }

    fn prune_locked(&self, index: &mut SeriesIndex, now: Instant) -> usize {
        let ttl = self.series_ttl;
        let expired = |t: Instant| now.saturating_duration_since(t) >= ttl;
        let gone: Vec<SeriesKey> = index
            .series
            .iter()
            .filter(|(_, s)| s.last_update.is_none_or(expired))
            .map(|(k, _)| k.clone())
            .collect();
        let empty = SeriesLabelSets::default();
        for key in &gone {
            if let Some(sets) = index.series.remove(key) {
                self.remove_stale(&sets, &empty);
            }
            let l = ModelLabels::from(key);
            self.requests.remove(&l);
            self.duration.remove(&l);
            self.confidence.remove(&l);
            self.window_events.remove(&l);
        }
        index.late_models.retain(|model, t| {
            let keep = !expired(*t);
            if !keep {
                self.late_events.remove(&ModelOnlyLabel {
                    model: model.clone(),
                });
            }
            keep
        });
        gone.len()
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use types::drift::FeatureStatus;
    use types::report::WindowReport;

    use super::super::fixtures::{M, feature, key, report, sample, setup, text};
    use super::*;
    use crate::exporter::LateEvents;

    #[test]
    fn nan_latency_and_confidence_are_rejected_and_counted_e18() {
        let (registry, metrics) = setup();
        let closed = ClosedWindow {
            report: report(key(), 4),
            latencies_s: vec![0.004, f64::NAN, 0.2, f64::INFINITY, 3.0],
            confidences: vec![0.95, f64::NAN, 0.55],
        };
        metrics.observe_window(&closed, Instant::now());
        let t = text(&registry);
        let d = "model_request_duration_seconds";
        assert_eq!(
            sample(&t, &format!("{d}_count{{{M}}}")).as_deref(),
            Some("3")
        );
        let sum: f64 = sample(&t, &format!("{d}_sum{{{M}}}"))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 3.204).abs() < 1e-12, "{sum}");
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="0.005",{M}}}"#)).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="0.25",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="2.5",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="+Inf",{M}}}"#)).as_deref(),
            Some("3")
        );
        let c = "model_prediction_confidence";
        assert_eq!(
            sample(&t, &format!("{c}_count{{{M}}}")).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{c}_bucket{{le="+Inf",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{c}_bucket{{le="0.6",{M}}}"#)).as_deref(),
            Some("1")
        );
        assert!(
            !t.lines().any(|l| !l.starts_with('#') && l.contains("NaN")),
            "{t}"
        );
        let inv = "driftwatch_invalid_values_total";
        assert_eq!(
            sample(&t, &format!(r#"{inv}{{field="latency"}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{inv}{{field="confidence"}}"#)).as_deref(),
            Some("1")
        );
        assert_eq!(metrics.invalid_values_total(InvalidField::Latency), 2);
        assert_eq!(
            sample(&t, &format!("model_requests_total{{{M}}}")).as_deref(),
            Some("4")
        );
        assert_eq!(
            sample(&t, &format!("model_window_events{{{M}}}")).as_deref(),
            Some("4")
        );
    }

    #[test]
    fn drift_gauges_thresholds_and_verdict_follow_the_window() {
        let (registry, metrics) = setup();
        let mut r = report(key(), 1000);
        r.drift = vec![feature(FeatureStatus::Ok, true)];
        r.missing_ratio.insert("car_value".to_string(), 0.25);
        let now = Instant::now();
        metrics.observe_window(
            &ClosedWindow {
                report: r.clone(),
                latencies_s: vec![],
                confidences: vec![],
            },
            now,
        );
        let t = text(&registry);
        let fl = format!(r#"{M},feature="car_value""#);
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.25")
        );
        assert_eq!(
            sample(&t, &format!(r#"model_data_drift{{{fl},method="psi"}}"#)).as_deref(),
            Some("0.5")
        );
        assert_eq!(
            sample(&t, &format!(r#"model_data_drift{{{fl},method="ks"}}"#)).as_deref(),
            Some("0.2")
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift_p_value{{{fl},method="ks"}}"#)
            )
            .as_deref(),
            Some("0.001")
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift_threshold{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.1")
        );
        // psi does not vote, ks votes "below": no threshold series.
        let psi = format!(r#"model_data_drift_threshold{{{fl},method="psi"}}"#);
        assert_eq!(sample(&t, &psi), None, "{t}");
        assert!(!t.contains(r#"method="ks"} 0.05"#));
        assert_eq!(
            sample(&t, &format!("model_feature_drift{{{fl}}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&t, &format!("model_feature_missing_ratio{{{fl}}}")).as_deref(),
            Some("0.25")
        );

        // The next window has insufficient data: no verdict, no threshold, statistics still shown.
        r.drift = vec![feature(
            FeatureStatus::InsufficientData { min_samples: 500 },
            false,
        )];
        r.missing_ratio.clear();
        metrics.observe_window(
            &ClosedWindow {
                report: r,
                latencies_s: vec![],
                confidences: vec![],
            },
            now,
        );
        let t = text(&registry);
        assert_eq!(
            sample(&t, &format!("model_feature_drift{{{fl}}}")),
            None,
            "{t}"
        );
        assert!(!t.contains("model_data_drift_threshold{"), "{t}");
        assert_eq!(
            sample(&t, &format!("model_feature_missing_ratio{{{fl}}}")),
            None
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.25")
        );
    }

    #[test]
    fn custom_window_metrics_are_gauges_removed_when_absent() {
        let (registry, metrics) = setup();
        let mut r = report(key(), 10);
        r.custom.insert("error_rate".to_string(), Some(0.125));
        r.custom.insert("broken".to_string(), None);
        let now = Instant::now();
        let closed = |r: WindowReport| ClosedWindow {
            report: r,
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&closed(r.clone()), now);
        let t = text(&registry);
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_window_metric{{{M},metric="error_rate"}}"#)
            )
            .as_deref(),
            Some("0.125"),
            "{t}"
        );
        assert!(!t.contains(r#"metric="broken""#), "{t}");
        r.custom.clear();
        metrics.observe_window(&closed(r), now);
        let t = text(&registry);
        assert!(!t.contains("model_window_metric{"), "{t}");
    }

    #[test]
    fn series_expire_after_the_ttl_from_every_family() {
        let (registry, metrics) = setup();
        let t0 = Instant::now();
        let mut r = report(key(), 5);
        r.drift = vec![feature(FeatureStatus::Ok, true)];
        r.missing_ratio.insert("car_value".to_string(), 0.0);
        let closed = ClosedWindow {
            report: r,
            latencies_s: vec![0.1],
            confidences: vec![0.9],
        };
        metrics.observe_window(&closed, t0);
        let other = ClosedWindow {
            report: report(SeriesKey::new("m", "v2", "canary"), 7),
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&other, t0 + Duration::from_secs(1800));
        metrics.emit(LateEvents {
            model: "m",
            count: 3,
            offsets: &"kafka 0:17",
            now: t0,
        });
        assert!(text(&registry).contains(r#"driftwatch_late_events_total{model="m"} 3"#));

        assert_eq!(metrics.prune(t0 + Duration::from_secs(3599)), 0);
        assert_eq!(metrics.prune(t0 + Duration::from_secs(3600)), 1);
        let t = text(&registry);
        assert!(!t.contains(r#"version="v1""#), "{t}");
        assert!(!t.contains("driftwatch_late_events_total{"), "{t}");
        assert_eq!(
            sample(
                &t,
                r#"model_requests_total{model="m",version="v2",variant="canary"}"#
            )
            .as_deref(),
            Some("7")
        );
        assert_eq!(metrics.prune(t0 + Duration::from_secs(5400)), 1);
        assert!(!text(&registry).contains("model_requests_total{"));
    }
}
