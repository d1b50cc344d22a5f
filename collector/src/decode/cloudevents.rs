//! KServe's inference logger: CloudEvents in binary mode over HTTP.
//!
//! The logger posts the request and the response of each prediction as two CloudEvents whose
//! attributes travel in `ce-*` headers: `ce-id` (the request id, shared by both halves), `ce-type`
//! (`org.kubeflow.serving.inference.request` or `...response`), `ce-time`, and KServe's extensions
//! `ce-inferenceservicename`, `ce-namespace`, `ce-component`, `ce-endpoint`. The body is the
//! request or response as the model server saw it: Open Inference Protocol v2 JSON
//! (`inputs`/`outputs`) or KServe v1 (`instances`/`predictions`).

use std::collections::BTreeMap;

use chrono::DateTime;

use crate::decode::oip::{self, OipMapping, OipMessage, PairTiming};
use crate::decode::pairing::Half;
use crate::decode::{DecodeError, DecodeReason, Encoding};
use crate::event::{EventTime, FeatureValue, PredictionEvent, Variant};

/// The body of one half.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Open Inference Protocol v2 JSON.
    V2(OipMessage),
    /// KServe v1 `{"instances": [...]}`: one feature map per row.
    V1Instances(Vec<BTreeMap<String, FeatureValue>>),
    /// KServe v1 `{"predictions": [...]}`: one value per row (a list of class probabilities is
    /// kept as numbers).
    V1Predictions(Vec<serde_json::Value>),
}

/// An estimate of the memory a JSON value holds once parsed, in bytes.
fn json_heap_bytes(v: &serde_json::Value) -> usize {
    let node = std::mem::size_of::<serde_json::Value>();
    node + match v {
        serde_json::Value::String(s) => s.len(),
        serde_json::Value::Array(a) => a.iter().map(json_heap_bytes).sum(),
        serde_json::Value::Object(o) => o.iter().map(|(k, v)| k.len() + json_heap_bytes(v)).sum(),
        _ => 0,
    }
}

impl Body {
    /// An estimate of the memory the decoded body holds, in bytes (see
    /// [`OipMessage::heap_bytes`]); the pairer weighs waiting halves by it.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Body::V2(m) => m.heap_bytes(),
            Body::V1Instances(rows) => rows
                .iter()
                .flat_map(|row| row.iter())
                .map(|(k, v)| {
                    let text = match v {
                        FeatureValue::Text(s) => s.len(),
                        _ => 0,
                    };
                    // A B-tree entry: key and value with their headers, plus node overhead.
                    k.len() + text + std::mem::size_of::<(String, FeatureValue)>() + 16
                })
                .sum(),
            Body::V1Predictions(values) => values.iter().map(json_heap_bytes).sum(),
        }
    }
}

/// One decoded CloudEvent half.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEventHalf {
    /// `ce-id`: pairs the request with its response.
    pub id: String,
    /// Request or response (from `ce-type`).
    pub half: Half,
    /// `ce-time` in epoch milliseconds, if present and valid.
    pub time_ms: Option<i64>,
    /// `ce-inferenceservicename`, if present.
    pub service: Option<String>,
    /// `ce-endpoint` (`default` or `canary` for KServe predictors), if present.
    pub endpoint: Option<String>,
    /// The payload.
    pub body: Body,
}

/// Decodes a binary-mode CloudEvent from its headers (names in any case) and body.
///
/// # Errors
/// `missing_field` without `ce-id` or `ce-type`; `invalid_field` for an unknown `ce-type` or an
/// unreadable body.
pub fn decode<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> Result<CloudEventHalf, DecodeError> {
    let headers: BTreeMap<String, &str> = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let get = |k: &str| {
        headers
            .get(k)
            .copied()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let id = get("ce-id").ok_or_else(|| {
        DecodeError::new(
            DecodeReason::MissingField,
            "missing CloudEvents header `ce-id`",
        )
    })?;
    let ce_type = get("ce-type").ok_or_else(|| {
        DecodeError::new(
            DecodeReason::MissingField,
            "missing CloudEvents header `ce-type`",
        )
    })?;
    let half = if ce_type.ends_with(".request") || ce_type.ends_with("request") {
        Half::Request
    } else if ce_type.ends_with(".response") || ce_type.ends_with("response") {
        Half::Response
    } else {
        return Err(DecodeError::new(
            DecodeReason::InvalidField,
            format!("`ce-type: {ce_type}` is neither an inference request nor a response"),
        ));
    };
    let time_ms = get("ce-time")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        DecodeError::new(
            DecodeReason::InvalidJson,
            format!("the {} body is not JSON: {e}", half.as_str()),
        )
    })?;
    let body = if value.get("inputs").is_some() || value.get("outputs").is_some() {
        Body::V2(oip::decode_message(
            body,
            Encoding::OipV2Json,
            half == Half::Response,
        )?)
    } else if let Some(instances) = value.get("instances").and_then(|v| v.as_array()) {
        Body::V1Instances(
            instances
                .iter()
                .map(instance_features)
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(predictions) = value.get("predictions").and_then(|v| v.as_array()) {
        Body::V1Predictions(predictions.clone())
    } else {
        return Err(DecodeError::new(
            DecodeReason::MissingField,
            format!(
                "the {} body has none of `inputs`, `outputs`, `instances`, `predictions`",
                half.as_str()
            ),
        ));
    };
    Ok(CloudEventHalf {
        id: id.to_string(),
        half,
        time_ms,
        service: get("ce-inferenceservicename").map(str::to_string),
        endpoint: get("ce-endpoint").map(str::to_string),
        body,
    })
}

fn scalar(v: &serde_json::Value) -> Option<FeatureValue> {
    match v {
        serde_json::Value::Null => Some(FeatureValue::Null),
        serde_json::Value::Bool(b) => Some(FeatureValue::Bool(*b)),
        serde_json::Value::Number(n) => n.as_f64().map(FeatureValue::Number),
        serde_json::Value::String(s) => Some(FeatureValue::Text(s.clone())),
        _ => None,
    }
}

/// A v1 instance: an object of named features, or an array of positional ones (`instances_0`, ...).
fn instance_features(v: &serde_json::Value) -> Result<BTreeMap<String, FeatureValue>, DecodeError> {
    let bad = || {
        DecodeError::new(
            DecodeReason::InvalidField,
            format!("instance {v} is not an object or a flat array of scalars"),
        )
    };
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| scalar(v).map(|s| (k.clone(), s)).ok_or_else(bad))
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(j, v)| {
                scalar(v)
                    .map(|s| (format!("instances_{j}"), s))
                    .ok_or_else(bad)
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// Assembles a request half and a response half into events.
///
/// The model is the mapping's, else `ce-inferenceservicename`; the variant is `canary` when
/// `ce-endpoint` is `canary`, else the mapping's.
///
/// # Errors
/// `invalid_field` when the two halves use different protocols or disagree on the row count, and
/// the errors of [`oip::assemble`].
pub fn assemble(
    request: &CloudEventHalf,
    response: &CloudEventHalf,
    mapping: &OipMapping,
    fallback_ms: i64,
) -> Result<Vec<PredictionEvent>, DecodeError> {
    let mut mapping = mapping.clone();
    if mapping.model.is_none() {
        mapping.model = request.service.clone().or_else(|| response.service.clone());
    }
    if request.endpoint.as_deref().or(response.endpoint.as_deref()) == Some("canary") {
        mapping.variant = Variant::Canary;
    }
    let timing = PairTiming {
        request_ms: request.time_ms,
        response_ms: response.time_ms,
    };
    match (&request.body, &response.body) {
        (Body::V2(req), Body::V2(resp)) => {
            let mut req = req.clone();
            if req.id.is_empty() {
                req.id = request.id.clone();
            }
            oip::assemble(&req, resp, &mapping, timing, fallback_ms)
        }
        (Body::V1Instances(rows), Body::V1Predictions(preds)) => {
            if rows.len() != preds.len() {
                return Err(DecodeError::new(
                    DecodeReason::InvalidField,
                    format!("{} instances but {} predictions", rows.len(), preds.len()),
                ));
            }
            let model = mapping.model.clone().ok_or_else(|| {
                DecodeError::new(
                    DecodeReason::MissingField,
                    "no model name: set it in the mapping or send ce-inferenceservicename",
                )
            })?;
            let names = mapping.feature_names.get("instances");
            let timestamp = timing
                .response_ms
                .or(timing.request_ms)
                .unwrap_or(fallback_ms);
            let latency_ms = match (timing.request_ms, timing.response_ms) {
                (Some(a), Some(b)) if b >= a => Some((b - a) as f64),
                _ => None,
            };
            rows.iter()
                .zip(preds)
                .enumerate()
                .map(|(i, (features, pred))| {
                    let features = match names {
                        Some(names) => features
                            .iter()
                            .map(|(k, v)| {
                                let renamed = k
                                    .strip_prefix("instances_")
                                    .and_then(|j| j.parse::<usize>().ok())
                                    .and_then(|j| names.get(j).cloned())
                                    .unwrap_or_else(|| k.clone());
                                (renamed, v.clone())
                            })
                            .collect(),
                        None => features.clone(),
                    };
                    let (prediction, confidence) = v1_prediction(pred);
                    let event = PredictionEvent {
                        timestamp: EventTime(timestamp),
                        model: model.clone(),
                        model_version: None,
                        variant: mapping.variant,
                        request_id: Some(if rows.len() == 1 {
                            request.id.clone()
                        } else {
                            format!("{}:{i}", request.id)
                        }),
                        features,
                        prediction,
                        confidence,
                        latency_ms,
                    };
                    event
                        .validate()
                        .map_err(|e| DecodeError::new(e.reason(), e.to_string()))?;
                    Ok(event)
                })
                .collect()
        }
        _ => Err(DecodeError::new(
            DecodeReason::InvalidField,
            "the request and the response use different protocols (v1 instances/predictions vs v2 inputs/outputs)",
        )),
    }
}

fn v1_prediction(v: &serde_json::Value) -> (Option<FeatureValue>, Option<f64>) {
    match v {
        serde_json::Value::Array(probs) => {
            let nums: Vec<f64> = probs.iter().filter_map(serde_json::Value::as_f64).collect();
            let (arg, max) =
                nums.iter()
                    .enumerate()
                    .fold((0usize, f64::NEG_INFINITY), |(ai, am), (i, &x)| {
                        if x > am { (i, x) } else { (ai, am) }
                    });
            if nums.is_empty() {
                (None, None)
            } else {
                (
                    Some(FeatureValue::Number(arg as f64)),
                    // Not filtered: a largest "probability" outside [0, 1] fails validation
                    // with its value (issue 19, finding 8: it was silently dropped).
                    Some(max),
                )
            }
        }
        other => (scalar(other), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &'static str, kind: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("Ce-Specversion", "1.0"),
            ("Ce-Id", id),
            ("Ce-Type", kind),
            ("Ce-Source", "http://localhost:9081/"),
            ("Ce-Inferenceservicename", "car-loan"),
            ("Ce-Namespace", "models"),
            ("Ce-Component", "predictor"),
            ("Ce-Endpoint", "canary"),
            ("Ce-Time", "2026-11-29T17:00:00.000Z"),
        ]
    }

    #[test]
    fn v1_pair_becomes_events() {
        let req = decode(
            headers("r1", "org.kubeflow.serving.inference.request"),
            br#"{"instances": [{"car_value": 39811.0, "salary_range": "40K - 60K"}, {"car_value": 12679.0, "salary_range": "0 - 20K"}]}"#,
        )
        .unwrap();
        let resp = decode(
            headers("r1", "org.kubeflow.serving.inference.response"),
            br#"{"predictions": [1, 0]}"#,
        )
        .unwrap();
        assert_eq!((req.half, resp.half), (Half::Request, Half::Response));
        let events = assemble(&req, &resp, &OipMapping::default(), 0).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].model, "car-loan");
        assert_eq!(events[0].variant, Variant::Canary);
        assert_eq!(
            events[1].features["salary_range"],
            FeatureValue::Text("0 - 20K".into())
        );
        assert_eq!(events[1].prediction, Some(FeatureValue::Number(0.0)));
        assert_eq!(
            events[0].timestamp.to_utc().unwrap().to_rfc3339(),
            "2026-11-29T17:00:00+00:00"
        );
    }

    #[test]
    fn v2_bodies_are_supported() {
        let req = decode(
            headers("r2", "org.kubeflow.serving.inference.request"),
            br#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}"#,
        )
        .unwrap();
        let resp = decode(
            headers("r2", "org.kubeflow.serving.inference.response"),
            br#"{"model_name": "car-loan", "outputs": [{"name": "p", "shape": [1, 2], "datatype": "FP64", "data": [0.2, 0.8]}]}"#,
        )
        .unwrap();
        let events = assemble(&req, &resp, &OipMapping::default(), 0).unwrap();
        assert_eq!(events[0].confidence, Some(0.8));
        assert_eq!(events[0].request_id.as_deref(), Some("r2"));
    }

    #[test]
    fn missing_ce_id_and_unknown_type_are_named() {
        let err = decode(
            vec![("ce-type", "org.kubeflow.serving.inference.request")],
            b"{}",
        )
        .unwrap_err();
        assert!(err.message.contains("ce-id"), "{}", err.message);
        let err = decode(
            vec![("ce-id", "x"), ("ce-type", "com.example.other")],
            b"{}",
        )
        .unwrap_err();
        assert_eq!(err.reason.as_str(), "invalid_field");
    }
}
