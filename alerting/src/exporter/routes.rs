//! The exporter's HTTP routes: [`router`] serves `GET /metrics` (OpenMetrics, or the Prometheus
//! text format 0.0.4 when asked for), `GET /healthz` and `GET /readyz`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::format::{
    OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE, encode_registry,
    openmetrics_to_prometheus_text, wants_prometheus_text,
};
use super::readiness::Readiness;

#[derive(Clone, Debug)]
struct ExporterState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The exporter's routes, to merge into the binary's HTTP server:
/// - `GET /metrics`: `registry` as OpenMetrics text, content type [`OPENMETRICS_CONTENT_TYPE`]
///   (500 with a JSON error if encoding fails);
/// - `GET /healthz`: 200 `{"status":"ok"}` while the process runs;
/// - `GET /readyz`: 200 `{"status":"ready"}` when `readiness` is set, else 503
///   `{"status":"not_ready","reason":"..."}`.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz_handler))
        .route("/readyz", get(readyz_handler))
        .with_state(ExporterState {
            registry,
            readiness,
        })
}

async fn metrics_handler(
    State(state): State<ExporterState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match encode_registry(&state.registry) {
        Ok(text) if wants_prometheus_text(accept) => (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE)],
            openmetrics_to_prometheus_text(&text),
        )
            .into_response(),
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            let body = serde_json::json!({"error": e.to_string()});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

async fn healthz_handler() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz_handler(State(state): State<ExporterState>) -> Response {
    match state.readiness.status() {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => {
            let body = serde_json::json!({"status": "not_ready", "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use types::report::ClosedWindow;

    use super::super::fixtures::{key, report, setup};
    use super::*;
    use telemetry::{Emit, Metrics as _};

    use crate::alertmanager_telemetry::{AlertmanagerMetrics, AlertsPosted, PostOutcome};
    use crate::exporter::LateEvents;
    use crate::trigger::AlertStatus;

    /// Issue 19, finding 8: `/metrics` answered OpenMetrics to `Accept: text/plain;version=0.0.4`,
    /// and `promtool check metrics` failed on every counter ("no help text"). Asked for text
    /// 0.0.4, it now answers that format, and promtool (installed by scripts/test.sh) passes it.
    #[tokio::test]
    async fn metrics_endpoint_negotiates_the_prometheus_text_format_and_promtool_passes_it() {
        let (mut registry, metrics) = setup();
        let alertmanager = AlertmanagerMetrics::register(&mut registry, &());
        let closed = ClosedWindow {
            report: report(key(), 5),
            latencies_s: vec![0.01, 0.2],
            confidences: vec![0.9, 0.4],
        };
        metrics.observe_window(&closed, Instant::now());
        metrics.emit(LateEvents {
            model: "m",
            count: 2,
            offsets: &"kafka 0:17",
            now: Instant::now(),
        });
        alertmanager.emit(AlertsPosted {
            status: AlertStatus::Firing,
            outcome: PostOutcome::Ok,
            count: 1,
        });
        let app = router(Arc::new(registry), Readiness::new());
        let get = |accept: &'static str| {
            app.clone().oneshot(
                Request::get("/metrics")
                    .header(header::ACCEPT, accept)
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        let res = get("text/plain;version=0.0.4").await.unwrap();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            PROMETHEUS_TEXT_CONTENT_TYPE
        );
        let body = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("# HELP model_requests_total "), "{text}");
        assert!(
            text.contains("# TYPE model_requests_total counter"),
            "{text}"
        );
        assert!(text.contains("model_requests_total{"), "{text}");
        assert!(!text.contains("# EOF"));
        let mut promtool = std::process::Command::new(
            std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into()),
        )
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-services.sh installs it; or set PROMTOOL)");
        use std::io::Write as _;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Prometheus' own Accept header prefers OpenMetrics.
        let res = get(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .await
        .unwrap();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_openmetrics_text() {
        let (registry, metrics) = setup();
        let closed = ClosedWindow {
            report: report(key(), 5),
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&closed, Instant::now());
        let app = router(Arc::new(registry), Readiness::new());
        let res = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("# TYPE model_requests counter\n"), "{body}");
        assert!(
            body.contains(
                "model_requests_total{model=\"m\",version=\"v1\",variant=\"stable\"} 5\n"
            ),
            "{body}"
        );
        assert!(body.contains(&format!(
            "driftwatch_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn healthz_and_readyz() {
        let readiness = Readiness::new();
        let app = router(Arc::new(Registry::default()), readiness.clone());
        let get = |path: &'static str| Request::get(path).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(get("/healthz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["reason"], "starting");
        readiness.set_ready();
        let res = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        readiness.set_not_ready("checkpoint restore failed");
        let res = app.oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["reason"], "checkpoint restore failed");
    }
}
