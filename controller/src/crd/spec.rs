//! The top of the spec: [`ModelMonitorSpec`], from which `#[derive(CustomResource)]` makes the
//! [`ModelMonitor`] resource (group, version, names, status subresource, printer columns), and
//! the [`DriftPolicy`] that says which alerts open a drift episode.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::canary_spec::CanaryPolicy;
use super::retraining_spec::RetrainingSpec;
use super::status::ModelMonitorStatus;

/// What to watch, how to retrain and how to roll out a new version of one model.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy reads as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "driftwatch.io",
    version = "v1alpha1",
    kind = "ModelMonitor",
    plural = "modelmonitors",
    shortname = "mm",
    namespaced,
    status = "ModelMonitorStatus",
    derive = "PartialEq",
    doc = "Watches one model in production: drift-triggered GPU retraining and canary analysis.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Canary", type_ = "string", json_path = ".status.canary.phase"),
    printcolumn(
        name = "Weight",
        type_ = "integer",
        json_path = ".status.canary.weight"
    ),
    printcolumn(
        name = "Retrain",
        type_ = "string",
        json_path = ".status.lastRetrain.outcome"
    ),
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".status.lastRetrain.jobName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ModelMonitorSpec {
    /// The model's name as it appears in the `model` label of prediction events, metrics and
    /// alerts, e.g. `car-loan`. 1 to 253 characters: letters, digits, `.`, `_` and `-`,
    /// starting and ending with a letter or digit.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    )]
    pub model: String,
    /// Location of the model's reference profile (path or URI), passed to the retraining Job as
    /// `DRIFTWATCH_REFERENCE_PROFILE`. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_profile: Option<String>,
    /// Which alerts open a drift episode. Default: `ModelDataDrift` only.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
    /// The retraining Job template and its rate limits. Absent: drift is watched, never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingSpec>,
    /// Canary analysis of a new model version. Absent: no canary analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryPolicy>,
}

/// Which firing alerts count as a drift episode for this model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftPolicy {
    /// Alert names that start a retraining episode when firing with this model's `model` label.
    /// Default: `["ModelDataDrift"]`.
    #[serde(default = "default_trigger_alerts")]
    #[schemars(length(min = 1))]
    pub trigger_alerts: Vec<String>,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        Self {
            trigger_alerts: default_trigger_alerts(),
        }
    }
}

fn default_trigger_alerts() -> Vec<String> {
    vec![types::names::alert::MODEL_DATA_DRIFT.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_has_status_subresource_printer_columns_and_cel_rules() {
        let crd = ModelMonitor::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("modelmonitors.driftwatch.io")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Model", "Canary", "Weight", "Retrain", "Job", "Age"]
        );
        let json = serde_json::to_string(&crd).expect("json");
        assert!(json.contains(r#""rule":"self.maxWeight >= self.stepWeight""#));
        assert!(json.contains(r#""message":"a Custom check needs a query""#));
        assert!(json.contains(r#""x-kubernetes-list-map-keys":["name"]"#));
    }
}
