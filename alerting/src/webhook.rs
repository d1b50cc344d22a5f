//! The Alertmanager webhook receiver: `POST /v1/alertmanager` with Alertmanager's webhook payload
//! (version 4), turned into one [`AlertTrigger`] per alert.
//!
//! It acts PER ALERT, never per group: a notification's top-level `status` is `firing` as soon as
//! one alert of the group fires, so a group with A firing and B resolved yields a firing trigger
//! for A and a resolved trigger for B (edge case E19).
//!
//! Alertmanager re-delivers: on retries, on every `group_interval` while the group changes, on
//! every `repeat_interval`. The receiver is idempotent on (alert fingerprint, status, startsAt):
//! a delivery seen before emits nothing. The fingerprint is driftwatch's [`fingerprint`] of the
//! labels (the same identity as Alertmanager's own `fingerprint` field, and the one the rule
//! engine's triggers carry). Seen keys are kept for `dedup_retention` (bounded by
//! `dedup_capacity`, oldest first).
//!
//! Responses: 200 `{"triggers": n, "duplicates": m}`; 400 `{"error": "..."}` for a payload that
//! is not version 4 JSON of the documented shape, or an alert without `alertname` (nothing is
//! emitted then); 503 `{"error": "..."}` when the trigger channel is closed (Alertmanager retries
//! on 5xx).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

use crate::trigger::{AlertStatus, AlertTrigger, TriggerSource, fingerprint};

/// The path the receiver serves.
pub const WEBHOOK_PATH: &str = "/v1/alertmanager";

/// The webhook receiver's settings (e.g. the `[webhook]` section of the configuration).
///
/// ```toml
/// [webhook]
/// dedup_retention = "24h"
/// dedup_capacity = 100000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// How long a delivered (fingerprint, status, startsAt) is remembered to drop re-deliveries.
    /// Should exceed Alertmanager's `repeat_interval` (default 4h). A duration; default `24h`.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub dedup_retention: Duration,
    /// At most this many keys are remembered (the oldest are forgotten first). Default 100000.
    #[serde(default = "default_capacity")]
    pub dedup_capacity: usize,
    /// Credentials `POST /v1/alertmanager` requires (default: none, open): set them whenever the
    /// controller acts on alerts, and give Alertmanager the same in its receiver's
    /// `http_config` (`authorization` for a bearer token, or `basic_auth`). The binary applies
    /// them; see [`types::auth::AuthConfig`].
    #[serde(default)]
    pub auth: types::auth::AuthConfig,
}

fn default_retention() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_capacity() -> usize {
    100_000
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            dedup_retention: default_retention(),
            dedup_capacity: default_capacity(),
            auth: types::auth::AuthConfig::default(),
        }
    }
}

/// Alertmanager's webhook payload, version 4 (Alertmanager docs, "webhook_config"). Unknown
/// fields (e.g. `truncatedAlerts`) are accepted, so newer Alertmanagers keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Payload version; only `"4"` is accepted.
    pub version: String,
    /// Key identifying the group.
    #[serde(default)]
    pub group_key: String,
    /// `firing` when at least one alert of the group fires (NOT a per-alert status).
    pub status: AlertStatus,
    /// The receiver's name.
    #[serde(default)]
    pub receiver: String,
    /// Labels the group is grouped by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert of the group shares.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert of the group shares.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Link back to Alertmanager.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts, each with its own status.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a webhook payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// This alert's status.
    pub status: AlertStatus,
    /// Its labels; `alertname` is required.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: DateTime<Utc>,
    /// When it ended (`0001-01-01T00:00:00Z` while firing).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the alert's source.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    #[serde(default)]
    pub fingerprint: String,
}

type DedupKey = (String, AlertStatus, DateTime<Utc>);

/// Remembered deliveries, oldest first.
#[derive(Debug)]
struct Dedup {
    seen: HashSet<DedupKey>,
    order: VecDeque<(DedupKey, Instant)>,
    retention: Duration,
    capacity: usize,
}

impl Dedup {
    fn prune(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.retention;
            if !expired && self.order.len() <= self.capacity {
                break;
            }
            self.seen.remove(key);
            self.order.pop_front();
        }
    }

    fn insert(&mut self, key: DedupKey, now: Instant) {
        if self.seen.insert(key.clone()) {
            self.order.push_back((key, now));
        }
    }
}

#[derive(Debug, Clone)]
struct WebhookState {
    triggers: mpsc::Sender<AlertTrigger>,
    dedup: Arc<Mutex<Dedup>>,
}

/// The receiver's route, `POST /v1/alertmanager`, to merge into the binary's HTTP server.
/// Triggers (source [`TriggerSource::Webhook`]) go to `triggers`, the controller's channel.
pub fn router(triggers: mpsc::Sender<AlertTrigger>, config: &WebhookConfig) -> Router {
    let dedup = Dedup {
        seen: HashSet::new(),
        order: VecDeque::new(),
        retention: config.dedup_retention,
        capacity: config.dedup_capacity.max(1),
    };
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(WebhookState {
            triggers,
            dedup: Arc::new(Mutex::new(dedup)),
        })
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Turns one alert of a payload into its trigger.
fn trigger(alert: &WebhookAlert) -> Result<AlertTrigger, String> {
    let alertname = alert
        .labels
        .get("alertname")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "an alert has no `alertname` label".to_string())?;
    Ok(AlertTrigger {
        alertname: alertname.clone(),
        status: alert.status,
        labels: alert.labels.clone(),
        fingerprint: fingerprint(&alert.labels),
        starts_at: alert.starts_at,
        ends_at: match alert.status {
            AlertStatus::Resolved => alert.ends_at,
            AlertStatus::Firing => None,
        },
        source: TriggerSource::Webhook,
    })
}

async fn receive(State(state): State<WebhookState>, body: Bytes) -> Response {
    let payload: WebhookPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid Alertmanager webhook payload: {e}"),
            );
        }
    };
    if payload.version != "4" {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unsupported Alertmanager webhook payload version `{}` (expected `4`)",
                payload.version
            ),
        );
    }
    let triggers = match payload
        .alerts
        .iter()
        .map(trigger)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid Alertmanager webhook payload: {e}"),
            );
        }
    };
    // One delivery at a time: check, send and remember atomically, so concurrent re-deliveries of
    // the same alert emit it once.
    let mut dedup = state.dedup.lock().await;
    let now = Instant::now();
    dedup.prune(now);
    let (mut emitted, mut duplicates) = (0_usize, 0_usize);
    for t in triggers {
        let key = (t.fingerprint.clone(), t.status, t.starts_at);
        if dedup.seen.contains(&key) {
            duplicates += 1;
            continue;
        }
        tracing::info!(
            alertname = %t.alertname,
            status = ?t.status,
            fingerprint = %t.fingerprint,
            group = %payload.group_key,
            "Alertmanager webhook alert"
        );
        if state.triggers.send(t).await.is_err() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the controller's trigger channel is closed".to_string(),
            );
        }
        dedup.insert(key, now);
        emitted += 1;
    }
    Json(serde_json::json!({ "triggers": emitted, "duplicates": duplicates })).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn payload() -> serde_json::Value {
        serde_json::json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"ModelDataDrift\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "driftwatch",
            "groupLabels": {"alertname": "ModelDataDrift"},
            "commonLabels": {"alertname": "ModelDataDrift", "model": "car-loan"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "ModelDataDrift", "model": "car-loan", "feature": "A"},
                    "annotations": {"summary": "A drifts"},
                    "startsAt": "2026-01-01T00:10:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://driftwatch/alerts",
                    "fingerprint": "aaaa"
                },
                {
                    "status": "resolved",
                    "labels": {"alertname": "ModelDataDrift", "model": "car-loan", "feature": "B"},
                    "annotations": {},
                    "startsAt": "2026-01-01T00:00:00Z",
                    "endsAt": "2026-01-01T00:20:00Z",
                    "generatorURL": "",
                    "fingerprint": "bbbb"
                }
            ]
        })
    }

    fn request(body: String) -> Request<Body> {
        Request::post(WEBHOOK_PATH)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    async fn call(app: &Router, body: String) -> (StatusCode, serde_json::Value) {
        let res = app.clone().oneshot(request(body)).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn drain(rx: &mut mpsc::Receiver<AlertTrigger>) -> Vec<AlertTrigger> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn acts_per_alert_not_per_group_and_ignores_redelivery_e19() {
        let (tx, mut rx) = mpsc::channel(16);
        let app = router(tx, &WebhookConfig::default());
        let (status, body) = call(&app, payload().to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"triggers": 2, "duplicates": 0}));
        let got = drain(&mut rx);
        assert_eq!(got.len(), 2);
        let labels_a: BTreeMap<String, String> = [
            ("alertname", "ModelDataDrift"),
            ("model", "car-loan"),
            ("feature", "A"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let a = &got[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.labels, labels_a);
        assert_eq!(a.fingerprint, fingerprint(&labels_a));
        assert_eq!(a.starts_at.to_rfc3339(), "2026-01-01T00:10:00+00:00");
        assert_eq!(a.ends_at, None);
        assert_eq!(a.source, TriggerSource::Webhook);
        assert!(a.is_drift());
        let b = &got[1];
        assert_eq!(b.status, AlertStatus::Resolved);
        assert_eq!(b.labels["feature"], "B");
        assert_eq!(
            b.ends_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-01-01T00:20:00+00:00")
        );
        assert_eq!(b.source, TriggerSource::Webhook);

        // The same delivery again: nothing new.
        let (status, body) = call(&app, payload().to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"triggers": 0, "duplicates": 2}));
        assert!(drain(&mut rx).is_empty());

        // A later notification where A resolved: only that is new.
        let mut next = payload();
        next["status"] = "resolved".into();
        next["alerts"][0]["status"] = "resolved".into();
        next["alerts"][0]["endsAt"] = "2026-01-01T00:30:00Z".into();
        let (_, body) = call(&app, next.to_string()).await;
        assert_eq!(body, serde_json::json!({"triggers": 1, "duplicates": 1}));
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels["feature"], "A");
        assert_eq!(got[0].status, AlertStatus::Resolved);
    }

    #[tokio::test]
    async fn invalid_payloads_get_400_and_emit_nothing() {
        let (tx, mut rx) = mpsc::channel(16);
        let app = router(tx, &WebhookConfig::default());
        let (status, body) = call(&app, "{not json".to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid Alertmanager webhook payload")
        );

        let mut v3 = payload();
        v3["version"] = "3".into();
        let (status, body) = call(&app, v3.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["error"],
            "unsupported Alertmanager webhook payload version `3` (expected `4`)"
        );

        let mut no_name = payload();
        no_name["alerts"][1]["labels"] = serde_json::json!({"model": "car-loan"});
        let (status, body) = call(&app, no_name.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().contains("no `alertname`"));

        let mut bad_status = payload();
        bad_status["alerts"][0]["status"] = "pending".into();
        let (status, _) = call(&app, bad_status.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn dedup_forgets_after_retention_and_beyond_capacity() {
        let t0 = Instant::now();
        let key = |s: &str| {
            (
                s.to_string(),
                AlertStatus::Firing,
                DateTime::<Utc>::UNIX_EPOCH,
            )
        };
        let mut d = Dedup {
            seen: HashSet::new(),
            order: VecDeque::new(),
            retention: Duration::from_secs(60),
            capacity: 2,
        };
        d.insert(key("a"), t0);
        d.insert(key("b"), t0 + Duration::from_secs(30));
        d.insert(key("c"), t0 + Duration::from_secs(40));
        d.prune(t0 + Duration::from_secs(40));
        assert!(!d.seen.contains(&key("a")));
        assert!(d.seen.contains(&key("b")) && d.seen.contains(&key("c")));
        d.prune(t0 + Duration::from_secs(90));
        assert!(!d.seen.contains(&key("b")));
        assert!(d.seen.contains(&key("c")));
    }
}
