//! Reconcile-time validation of the spec: [`ModelMonitorSpec::validate`], for the rules CEL
//! cannot express and for objects admitted by an API server without CEL support. Its tests also
//! check the defaults a minimal spec is filled with.

use super::canary_spec::{CanaryPolicy, CheckKind, TargetKind};
use super::spec::ModelMonitorSpec;

impl ModelMonitorSpec {
    /// Checks the rules the controller relies on, returning every broken one with the field it
    /// names (e.g. `spec.canary.checks[1].name "latency" is used twice`). The CRD's CEL rules
    /// enforce most of these at admission already; this catches objects admitted by an API
    /// server without CEL support and the rules CEL cannot express.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.model.is_empty() {
            errors.push("spec.model must not be empty".to_string());
        }
        if self.drift_policy.trigger_alerts.is_empty() {
            errors.push("spec.driftPolicy.triggerAlerts must name at least one alert".to_string());
        }
        if let Some(r) = &self.retraining {
            if r.image.trim().is_empty() {
                errors.push("spec.retraining.image must not be empty".to_string());
            }
            if r.gpu_count > 16 {
                errors.push(format!(
                    "spec.retraining.gpuCount ({}) must be at most 16",
                    r.gpu_count
                ));
            }
            if !(0..=10).contains(&r.backoff_limit) {
                errors.push(format!(
                    "spec.retraining.backoffLimit ({}) must be within 0..=10",
                    r.backoff_limit
                ));
            }
            if r.active_deadline_seconds < 60 {
                errors.push(format!(
                    "spec.retraining.activeDeadlineSeconds ({}) must be at least 60",
                    r.active_deadline_seconds
                ));
            }
            if r.ttl_seconds_after_finished < 0 {
                errors.push("spec.retraining.ttlSecondsAfterFinished must not be negative".into());
            }
            if r.cooldown_seconds < 0 || r.failure_backoff_seconds < 0 {
                errors.push(
                    "spec.retraining.cooldownSeconds and failureBackoffSeconds must not be negative"
                        .into(),
                );
            }
            if r.max_runs_per_day == 0 {
                errors.push("spec.retraining.maxRunsPerDay must be at least 1".to_string());
            }
        }
        if let Some(c) = &self.canary {
            validate_canary(c, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn validate_canary(c: &CanaryPolicy, errors: &mut Vec<String>) {
    if c.target.name.is_empty() {
        errors.push("spec.canary.target.name must not be empty".to_string());
    }
    if c.target.kind == TargetKind::InferenceService
        && (c.target.stable_predictor.is_some() || c.target.canary_predictor.is_some())
    {
        errors.push(
            "spec.canary.target: stablePredictor and canaryPredictor apply to SeldonDeployment \
             targets only"
                .to_string(),
        );
    }
    if c.target.stable_predictor() == c.target.canary_predictor() {
        errors.push("spec.canary.target: stablePredictor and canaryPredictor must differ".into());
    }
    for (field, v) in [("stepWeight", c.step_weight), ("maxWeight", c.max_weight)] {
        if !(1..=100).contains(&v) {
            errors.push(format!("spec.canary.{field} ({v}) must be within 1..=100"));
        }
    }
    if c.max_weight < c.step_weight {
        errors.push(format!(
            "spec.canary.maxWeight ({}) must be at least spec.canary.stepWeight ({})",
            c.max_weight, c.step_weight
        ));
    }
    if c.interval_seconds == 0 {
        errors.push("spec.canary.intervalSeconds must be at least 1".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, check) in c.checks.iter().enumerate() {
        if !seen.insert(check.name.as_str()) {
            errors.push(format!(
                "spec.canary.checks[{i}].name {:?} is used twice",
                check.name
            ));
        }
        if check.min.is_none() && check.max.is_none() {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}) needs min or max",
                check.name
            ));
        }
        if check.kind == CheckKind::Custom && check.query.is_none() {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}): a Custom check needs a query",
                check.name
            ));
        }
        if [
            check.failure_limit,
            check.no_data_limit,
            check.provider_error_limit,
        ]
        .contains(&0)
        {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}): limits must be at least 1",
                check.name
            ));
        }
    }
    if let Some(p) = &c.metrics_source.prometheus
        && !p.url.starts_with("http://")
    {
        errors.push(format!(
            "spec.canary.metricsSource.prometheus.url {:?} must start with http://",
            p.url
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::crd::{CheckSpec, ModelMonitorSpec};

    fn spec() -> ModelMonitorSpec {
        serde_json::from_value(serde_json::json!({
            "model": "car-loan",
            "retraining": {"image": "train:1"},
            "canary": {
                "target": {"kind": "SeldonDeployment", "name": "car-loan"},
                "checks": [{"name": "latency", "kind": "LatencyRatio", "max": 1.2}]
            }
        }))
        .expect("valid spec")
    }

    #[test]
    fn defaults_are_filled_from_a_minimal_spec() {
        let s = spec();
        assert_eq!(s.drift_policy.trigger_alerts, vec!["ModelDataDrift"]);
        let r = s.retraining.as_ref().expect("retraining");
        assert_eq!(
            (r.gpu_count, r.backoff_limit, r.active_deadline_seconds),
            (1, 2, 21_600)
        );
        assert_eq!(
            (
                r.ttl_seconds_after_finished,
                r.cooldown_seconds,
                r.max_runs_per_day
            ),
            (86_400, 3_600, 3)
        );
        let c = s.canary.as_ref().expect("canary");
        assert_eq!(
            (
                c.step_weight,
                c.max_weight,
                c.interval_seconds,
                c.min_requests_per_step
            ),
            (10, 50, 60, 100)
        );
        assert_eq!(c.checks[0].failure_limit, 1);
        assert_eq!(c.checks[0].no_data_limit, 5);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn validation_names_every_broken_field() {
        let mut s = spec();
        let c = s.canary.as_mut().expect("canary");
        c.max_weight = 5;
        c.checks.push(CheckSpec {
            min: None,
            max: None,
            ..c.checks[0].clone()
        });
        c.target.canary_predictor = Some("main".into());
        let errors = s.validate().expect_err("invalid");
        assert_eq!(
            errors,
            vec![
                "spec.canary.target: stablePredictor and canaryPredictor must differ",
                "spec.canary.maxWeight (5) must be at least spec.canary.stepWeight (10)",
                "spec.canary.checks[1].name \"latency\" is used twice",
                "spec.canary.checks[1] (latency) needs min or max",
            ]
        );
    }
}
