//! Traffic adapters: read a canary target's state and build the server-side apply patches that
//! set its traffic split. Pure functions over `serde_json::Value` (the targets are third-party
//! custom resources without Rust types here); the reconciler sends the patches with
//! `PatchParams::apply("driftwatch").force()`.
//!
//! - Seldon Core v1 `SeldonDeployment` (`machinelearning.seldon.io/v1`):
//!   `spec.predictors[].traffic`, which must sum to 100. The predictors list is not declared as a
//!   keyed list in Seldon's CRD, so server-side apply treats it as atomic: the patch therefore
//!   carries the whole current predictors list with only `traffic` changed, never a partial list
//!   (which would delete the other predictors' graphs).
//! - KServe `InferenceService` (`serving.kserve.io/v1beta1`):
//!   `spec.predictor.canaryTrafficPercent`. Rollback sets it to 0; promotion sets it to 100 and,
//!   once the new revision is ready, removes it by applying an object that no longer contains the
//!   field (server-side apply removes fields a manager stops applying, when no other manager
//!   owns them).

use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::machine::{TargetObservation, TrafficAction};
use crate::crd::{CanaryTarget, TargetKind};
use crate::error::{Error, Result};

/// The API resource of a target kind (group, version, kind, plural) for `Api<DynamicObject>`.
pub fn api_resource(kind: TargetKind) -> ApiResource {
    match kind {
        TargetKind::SeldonDeployment => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("machinelearning.seldon.io", "v1", "SeldonDeployment"),
            "seldondeployments",
        ),
        TargetKind::InferenceService => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("serving.kserve.io", "v1beta1", "InferenceService"),
            "inferenceservices",
        ),
    }
}

fn target_error(target: &CanaryTarget, message: impl Into<String>) -> Error {
    Error::Target {
        target: format!("{:?}/{}", target.kind, target.name),
        message: message.into(),
    }
}

fn predictors<'a>(target: &CanaryTarget, obj: &'a Value) -> Result<&'a Vec<Value>> {
    obj.pointer("/spec/predictors")
        .and_then(Value::as_array)
        .ok_or_else(|| target_error(target, "spec.predictors is missing"))
}

fn predictor_named<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

fn as_weight(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|w| u32::try_from(w).ok())
}

/// Reads the canary's identity, weight and readiness from the target object as returned by
/// `GET` (full object JSON).
///
/// Seldon: the canary is the predictor named `target.canaryPredictor`; its version is its
/// `labels.version`, else `graph.modelUri`, else its first container image; ready means
/// `status.state == "Available"`. KServe: a canary exists while `canaryTrafficPercent` is set;
/// its version is `spec.predictor.model.storageUri`, else the latest created revision; ready
/// means the latest created revision is the latest ready one.
///
/// # Errors
/// [`Error::Target`] when a Seldon target has no `spec.predictors` or lacks the stable predictor.
pub fn observe(target: &CanaryTarget, obj: &Value) -> Result<TargetObservation> {
    match target.kind {
        TargetKind::SeldonDeployment => {
            let list = predictors(target, obj)?;
            if predictor_named(list, target.stable_predictor()).is_none() {
                return Err(target_error(
                    target,
                    format!("stable predictor {:?} not found", target.stable_predictor()),
                ));
            }
            let canary = predictor_named(list, target.canary_predictor());
            let version = canary.and_then(|p| {
                p.pointer("/labels/version")
                    .or_else(|| p.pointer("/graph/modelUri"))
                    .or_else(|| p.pointer("/componentSpecs/0/spec/containers/0/image"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            Ok(TargetObservation {
                canary_version: version,
                canary_weight: canary.and_then(|p| as_weight(p.get("traffic"))),
                rollout_ready: obj.pointer("/status/state").and_then(Value::as_str)
                    == Some("Available"),
            })
        }
        TargetKind::InferenceService => {
            let weight = as_weight(obj.pointer("/spec/predictor/canaryTrafficPercent"));
            let created = obj
                .pointer("/status/components/predictor/latestCreatedRevision")
                .and_then(Value::as_str);
            let ready = obj
                .pointer("/status/components/predictor/latestReadyRevision")
                .and_then(Value::as_str);
            let version = weight.and_then(|_| {
                obj.pointer("/spec/predictor/model/storageUri")
                    .and_then(Value::as_str)
                    .or(created)
                    .map(str::to_string)
            });
            Ok(TargetObservation {
                canary_version: version,
                canary_weight: weight,
                rollout_ready: created.is_some() && created == ready,
            })
        }
    }
}

/// The server-side apply body for one traffic action on the target (`current` is the object
/// as read), or `None` when the action needs no write (Seldon `Finalize`).
///
/// Seldon bodies carry every predictor of `current` unchanged except `traffic`: canary = the
/// weight, stable = 100 - weight, any other predictor 0 (shadows), so the sum is always 100.
/// KServe bodies carry only `spec.predictor.canaryTrafficPercent` (`Finalize`: no `spec`).
///
/// # Errors
/// [`Error::Target`] when a Seldon target lacks the stable or canary predictor or another
/// predictor carries traffic (the split could not sum to 100), or a weight is above 100.
pub fn traffic_patch(
    target: &CanaryTarget,
    namespace: &str,
    current: &Value,
    action: TrafficAction,
) -> Result<Option<Value>> {
    let weight = match action {
        TrafficAction::SetCanaryWeight(w) if w > 100 => {
            return Err(target_error(
                target,
                format!("canary weight {w} is above 100"),
            ));
        }
        TrafficAction::SetCanaryWeight(w) => Some(w),
        TrafficAction::Promote => Some(100),
        TrafficAction::Finalize => None,
    };
    let ar = api_resource(target.kind);
    let mut body = json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {"name": target.name, "namespace": namespace},
    });
    match (target.kind, weight) {
        (TargetKind::SeldonDeployment, None) => Ok(None),
        (TargetKind::SeldonDeployment, Some(w)) => {
            let list = predictors(target, current)?;
            for name in [target.stable_predictor(), target.canary_predictor()] {
                if predictor_named(list, name).is_none() {
                    return Err(target_error(
                        target,
                        format!("predictor {name:?} not found"),
                    ));
                }
            }
            let mut out = Vec::with_capacity(list.len());
            for p in list {
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let traffic = if name == target.canary_predictor() {
                    w
                } else if name == target.stable_predictor() {
                    100 - w
                } else if as_weight(p.get("traffic")).unwrap_or(0) == 0 {
                    0
                } else {
                    return Err(target_error(
                        target,
                        format!(
                            "predictor {name:?} carries traffic; the split must be between the stable and canary predictors"
                        ),
                    ));
                };
                let mut p = p.clone();
                if let Some(map) = p.as_object_mut() {
                    map.insert("traffic".to_string(), json!(traffic));
                }
                out.push(p);
            }
            body["spec"] = json!({ "predictors": out });
            Ok(Some(body))
        }
        (TargetKind::InferenceService, Some(w)) => {
            body["spec"] = json!({"predictor": {"canaryTrafficPercent": w}});
            Ok(Some(body))
        }
        (TargetKind::InferenceService, None) => Ok(Some(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seldon_target() -> CanaryTarget {
        serde_json::from_value(json!({"kind": "SeldonDeployment", "name": "car-loan"})).expect("t")
    }

    fn kserve_target() -> CanaryTarget {
        serde_json::from_value(json!({"kind": "InferenceService", "name": "car-loan"})).expect("t")
    }

    fn seldon() -> Value {
        json!({
            "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
            "metadata": {"name": "car-loan", "namespace": "ml"},
            "spec": {"predictors": [
                {"name": "main", "traffic": 100, "replicas": 2,
                 "graph": {"name": "clf", "implementation": "SKLEARN_SERVER", "modelUri": "gs://m/v1"}},
                {"name": "canary", "traffic": 0, "labels": {"version": "v2"},
                 "graph": {"name": "clf", "implementation": "SKLEARN_SERVER", "modelUri": "gs://m/v2"}},
                {"name": "shadow", "shadow": true, "graph": {"name": "clf", "modelUri": "gs://m/v3"}}
            ]},
            "status": {"state": "Available"}
        })
    }

    #[test]
    fn seldon_patch_keeps_predictors_and_sums_to_100() {
        let body = traffic_patch(
            &seldon_target(),
            "ml",
            &seldon(),
            TrafficAction::SetCanaryWeight(30),
        )
        .expect("patch")
        .expect("body");
        assert_eq!(body["apiVersion"], "machinelearning.seldon.io/v1");
        assert_eq!(
            body["metadata"],
            json!({"name": "car-loan", "namespace": "ml"})
        );
        let preds = body["spec"]["predictors"].as_array().expect("list");
        let traffic: Vec<(String, u64)> = preds
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("n").to_string(),
                    p["traffic"].as_u64().expect("t"),
                )
            })
            .collect();
        assert_eq!(
            traffic,
            [
                ("main".into(), 70),
                ("canary".into(), 30),
                ("shadow".into(), 0)
            ]
        );
        assert_eq!(traffic.iter().map(|(_, t)| t).sum::<u64>(), 100);
        assert_eq!(
            preds[0]["graph"]["modelUri"], "gs://m/v1",
            "graphs are carried unchanged"
        );
        assert_eq!(preds[0]["replicas"], 2);

        let rollback = traffic_patch(
            &seldon_target(),
            "ml",
            &seldon(),
            TrafficAction::SetCanaryWeight(0),
        )
        .expect("patch")
        .expect("body");
        assert_eq!(rollback["spec"]["predictors"][0]["traffic"], 100);
        assert_eq!(rollback["spec"]["predictors"][1]["traffic"], 0);
        let promote = traffic_patch(&seldon_target(), "ml", &seldon(), TrafficAction::Promote)
            .expect("patch")
            .expect("body");
        assert_eq!(promote["spec"]["predictors"][1]["traffic"], 100);
        assert_eq!(
            traffic_patch(&seldon_target(), "ml", &seldon(), TrafficAction::Finalize).expect("ok"),
            None
        );
    }

    #[test]
    fn seldon_rejects_missing_predictors_and_third_party_traffic() {
        let mut obj = seldon();
        obj["spec"]["predictors"][2]["traffic"] = json!(10);
        let err = traffic_patch(
            &seldon_target(),
            "ml",
            &obj,
            TrafficAction::SetCanaryWeight(10),
        )
        .expect_err("third predictor has traffic");
        assert_eq!(err.metric_label(), "canary_target");
        let mut t = seldon_target();
        t.canary_predictor = Some("blue".into());
        assert!(traffic_patch(&t, "ml", &seldon(), TrafficAction::SetCanaryWeight(10)).is_err());
        assert!(
            traffic_patch(
                &seldon_target(),
                "ml",
                &seldon(),
                TrafficAction::SetCanaryWeight(101)
            )
            .is_err()
        );
    }

    #[test]
    fn seldon_observation_reads_version_weight_and_state() {
        let o = observe(&seldon_target(), &seldon()).expect("observe");
        assert_eq!(
            o,
            TargetObservation {
                canary_version: Some("v2".into()),
                canary_weight: Some(0),
                rollout_ready: true
            }
        );
        let mut obj = seldon();
        obj["spec"]["predictors"][1]["labels"] = json!({});
        assert_eq!(
            observe(&seldon_target(), &obj)
                .expect("o")
                .canary_version
                .as_deref(),
            Some("gs://m/v2")
        );
        obj["spec"]["predictors"]
            .as_array_mut()
            .expect("list")
            .remove(1);
        assert_eq!(
            observe(&seldon_target(), &obj).expect("o").canary_version,
            None
        );
    }

    #[test]
    fn kserve_patches_set_and_remove_canary_traffic_percent() {
        let isvc = json!({
            "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": "gs://m/v2"}}},
            "status": {"components": {"predictor": {"latestCreatedRevision": "r-2", "latestReadyRevision": "r-2"}}}
        });
        let o = observe(&kserve_target(), &isvc).expect("observe");
        assert_eq!(
            o,
            TargetObservation {
                canary_version: Some("gs://m/v2".into()),
                canary_weight: Some(10),
                rollout_ready: true
            }
        );
        let body = traffic_patch(
            &kserve_target(),
            "ml",
            &isvc,
            TrafficAction::SetCanaryWeight(0),
        )
        .expect("patch")
        .expect("body");
        assert_eq!(
            body,
            json!({
                "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "metadata": {"name": "car-loan", "namespace": "ml"},
                "spec": {"predictor": {"canaryTrafficPercent": 0}}
            })
        );
        let promote = traffic_patch(&kserve_target(), "ml", &isvc, TrafficAction::Promote)
            .expect("p")
            .expect("b");
        assert_eq!(promote["spec"]["predictor"]["canaryTrafficPercent"], 100);
        let finalize = traffic_patch(&kserve_target(), "ml", &isvc, TrafficAction::Finalize)
            .expect("p")
            .expect("b");
        assert_eq!(
            finalize.get("spec"),
            None,
            "the field is dropped from the applied configuration"
        );
        let stable = json!({"spec": {"predictor": {"model": {"storageUri": "gs://m/v2"}}}});
        assert_eq!(
            observe(&kserve_target(), &stable)
                .expect("o")
                .canary_version,
            None
        );
    }
}
