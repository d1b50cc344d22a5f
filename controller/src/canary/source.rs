//! Where a canary step's measurements come from: the [`MetricsSource`] trait, an in-process
//! implementation fed with plain values by the analyzer ([`InProcessSource`]) and a Prometheus
//! HTTP API implementation for split deployments ([`PrometheusSource`]).
//!
//! A source returns `Err` only when it is down as a whole (the analysis then holds); a single
//! failing or empty query is a per-check [`Sample::Error`] or [`Sample::Empty`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use types::names::metric;

use super::checks::Sample;
use super::machine::Inputs;
use crate::crd::{CanaryPolicy, CheckKind, CheckSpec};

/// What a step asks the source for.
#[derive(Debug, Clone, Copy)]
pub struct MeasureRequest<'a> {
    /// The monitored model's name (`model` label).
    pub model: &'a str,
    /// The canary policy (variants, interval, checks).
    pub policy: &'a CanaryPolicy,
}

/// A source of canary measurements.
pub trait MetricsSource: Send + Sync + fmt::Debug {
    /// Reads one step's inputs. `Err(reason)` means the source as a whole is unreachable.
    fn measure<'a>(&'a self, request: MeasureRequest<'a>) -> BoxFuture<'a, Result<Inputs, String>>;
}

/// In-process source: the analyzer publishes each model's latest canary measurements as plain
/// values; clones share the same table.
#[derive(Debug, Clone, Default)]
pub struct InProcessSource {
    inner: Arc<RwLock<InProcessTable>>,
}

#[derive(Debug, Default)]
struct InProcessTable {
    models: HashMap<String, Inputs>,
    down: Option<String>,
}

impl InProcessSource {
    /// Publishes `inputs` as the latest measurements of `model` (replacing earlier ones).
    pub fn publish(&self, model: &str, inputs: Inputs) {
        if let Ok(mut t) = self.inner.write() {
            t.models.insert(model.to_string(), inputs);
        }
    }

    /// The latest measurements of `model` without awaiting: `Err(reason)` while marked down,
    /// empty inputs for a model not reported yet.
    pub fn snapshot(&self, model: &str) -> Result<Inputs, String> {
        match self.inner.read() {
            Err(_) => Err("in-process metrics table is poisoned".to_string()),
            Ok(t) => match &t.down {
                Some(reason) => Err(reason.clone()),
                // A model the analyzer has not reported yet has no data (not an outage).
                None => Ok(t.models.get(model).cloned().unwrap_or_default()),
            },
        }
    }

    /// Marks the source down (`Some(reason)`, e.g. the analyzer is behind) or back up (`None`).
    pub fn set_down(&self, reason: Option<String>) {
        if let Ok(mut t) = self.inner.write() {
            t.down = reason;
        }
    }
}

impl MetricsSource for InProcessSource {
    fn measure<'a>(&'a self, request: MeasureRequest<'a>) -> BoxFuture<'a, Result<Inputs, String>> {
        let result = self.snapshot(request.model);
        Box::pin(async move { result })
    }
}

/// Prometheus HTTP API source (`GET <url>/api/v1/query?query=...`), plain HTTP.
///
/// Default queries use driftwatch's metric names (DESIGN.md) over the step interval `I`:
/// - requests: `sum(increase(model_requests_total{model="M",variant="canary"}[Is]))`; if this
///   query fails at the transport level or with a 5xx the source is down;
/// - `LatencyRatio`: p95 of `model_request_duration_seconds` for the canary variant over the
///   same for the stable variant;
/// - `Confidence`: median of `model_prediction_confidence` for the canary;
/// - `Drift`: `max(model_data_drift{model="M",variant="canary"})`;
/// - `ErrorRate`, `SuccessRate`, `Custom`: the check's `query` (over `totalQuery` when given).
#[derive(Clone)]
pub struct PrometheusSource {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The outcome of one instant query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// One series' value.
    Value(f64),
    /// No series.
    Empty,
    /// The query failed; `unavailable` when the server could not be reached or answered 5xx.
    Error {
        /// The message.
        message: String,
        /// Whether the server itself is unavailable.
        unavailable: bool,
    },
}

impl PrometheusSource {
    /// A source for the Prometheus at `base_url` (e.g. `http://prometheus:9090`), with a
    /// 5-second timeout per query.
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Runs one instant query.
    pub async fn query(&self, promql: &str) -> QueryResult {
        let uri = format!(
            "{}/api/v1/query?query={}",
            self.base,
            percent_encode(promql)
        );
        let unavailable = |message: String| QueryResult::Error {
            message,
            unavailable: true,
        };
        let uri: hyper::Uri = match uri.parse() {
            Ok(u) => u,
            Err(e) => {
                return QueryResult::Error {
                    message: format!("bad URL: {e}"),
                    unavailable: true,
                };
            }
        };
        let response = match tokio::time::timeout(self.timeout, self.client.get(uri)).await {
            Err(_) => return unavailable(format!("query timed out after {:?}", self.timeout)),
            Ok(Err(e)) => return unavailable(format!("cannot reach Prometheus: {e}")),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return unavailable(format!("cannot read Prometheus response: {e}")),
        };
        if status.is_server_error() {
            return unavailable(format!("Prometheus answered {status}"));
        }
        parse_query_response(&body)
    }

    async fn sample(&self, numerator: &str, denominator: Option<&str>) -> Sample {
        let to_sample = |r: QueryResult, q: &str| match r {
            QueryResult::Value(v) => Ok(v),
            QueryResult::Empty => Err(Sample::Empty(format!("query `{q}`"))),
            QueryResult::Error { message, .. } => {
                Err(Sample::Error(format!("query `{q}`: {message}")))
            }
        };
        let n = match to_sample(self.query(numerator).await, numerator) {
            Ok(v) => v,
            Err(s) => return s,
        };
        let Some(den) = denominator else {
            return Sample::Value(n);
        };
        match to_sample(self.query(den).await, den) {
            Ok(d) => Sample::Ratio {
                numerator: n,
                denominator: d,
            },
            Err(s) => s,
        }
    }
}

impl MetricsSource for PrometheusSource {
    fn measure<'a>(&'a self, request: MeasureRequest<'a>) -> BoxFuture<'a, Result<Inputs, String>> {
        Box::pin(async move {
            let p = request.policy;
            let requests_query = default_requests_query(request.model, p);
            let canary_requests = match self.query(&requests_query).await {
                QueryResult::Value(v) if v.is_finite() && v >= 0.0 => Some(v.round() as u64),
                QueryResult::Value(_) | QueryResult::Empty => None,
                QueryResult::Error {
                    message,
                    unavailable: true,
                } => return Err(message),
                QueryResult::Error { .. } => None,
            };
            let mut samples = BTreeMap::new();
            for check in &p.checks {
                let sample = match queries(request.model, p, check) {
                    Ok((num, den)) => self.sample(&num, den.as_deref()).await,
                    Err(message) => Sample::Error(message),
                };
                samples.insert(check.name.clone(), sample);
            }
            Ok(Inputs {
                canary_requests,
                samples,
            })
        })
    }
}

/// The analyzer source: `driftwatch serve`'s `GET /api/canary/{model}?window_seconds=N` (see
/// [`types::canary::CanarySummary`]), for a controller running as its own Deployment without a
/// Prometheus (`driftwatch controller --analyzer-url http://driftwatch:8080`). It measures
/// `LatencyRatio` (canary p95 over stable p95 of the newest windows), `Confidence` (canary
/// median) and `Drift` (largest canary drift statistic); `ErrorRate`, `SuccessRate` and
/// `Custom` need a Prometheus query and are provider errors here. Unreachable, 5xx or an
/// unreadable answer: the source is down (the analysis holds).
#[derive(Clone)]
pub struct AnalyzerSource {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for AnalyzerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnalyzerSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AnalyzerSource {
    /// A source for the service at `base_url` (e.g. `http://driftwatch:8080`), 5-second timeout.
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Reads the summary of `model` over the last `window_seconds`.
    ///
    /// # Errors
    /// Why the service could not answer (unreachable, timeout, non-2xx, not a summary).
    pub async fn summary(
        &self,
        model: &str,
        window_seconds: u64,
    ) -> Result<types::canary::CanarySummary, String> {
        let uri = format!(
            "{}/api/canary/{}?window_seconds={window_seconds}",
            self.base,
            percent_encode(model)
        );
        let uri: hyper::Uri = uri.parse().map_err(|e| format!("bad URL {uri}: {e}"))?;
        let response = match tokio::time::timeout(self.timeout, self.client.get(uri.clone())).await
        {
            Err(_) => return Err(format!("{uri} timed out after {:?}", self.timeout)),
            Ok(Err(e)) => return Err(format!("cannot reach the analyzer at {uri}: {e}")),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("cannot read the analyzer's answer from {uri}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("the analyzer at {uri} answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| {
            format!("the analyzer at {uri} answered something else than a canary summary: {e}")
        })
    }
}

/// One step's inputs from an analyzer summary.
pub fn inputs_from_summary(summary: &types::canary::CanarySummary, p: &CanaryPolicy) -> Inputs {
    let canary = summary.variants.get(&p.canary_variant);
    let stable = summary.variants.get(&p.stable_variant);
    let value = |v: Option<f64>, what: &str| match v {
        Some(x) => Sample::Value(x),
        None => Sample::Empty(format!(
            "no {what} of variant {} in the analyzer's windows",
            p.canary_variant
        )),
    };
    let samples = p
        .checks
        .iter()
        .map(|check| {
            let sample = match check.kind {
                CheckKind::LatencyRatio => match (
                    canary.and_then(|c| c.latency_p95_seconds),
                    stable.and_then(|s| s.latency_p95_seconds),
                ) {
                    (Some(numerator), Some(denominator)) => Sample::Ratio {
                        numerator,
                        denominator,
                    },
                    _ => Sample::Empty(format!(
                        "no p95 latency of both {} and {} in the analyzer's windows",
                        p.canary_variant, p.stable_variant
                    )),
                },
                CheckKind::Confidence => value(canary.and_then(|c| c.confidence_p50), "confidence"),
                CheckKind::Drift => value(canary.and_then(|c| c.drift_max), "drift statistic"),
                CheckKind::ErrorRate | CheckKind::SuccessRate | CheckKind::Custom => Sample::Error(format!(
                    "check {} ({:?}) needs a Prometheus query; the analyzer source does not measure it",
                    check.name, check.kind
                )),
            };
            (check.name.clone(), sample)
        })
        .collect();
    Inputs {
        canary_requests: Some(canary.map_or(0, |c| c.requests)),
        samples,
    }
}

impl MetricsSource for AnalyzerSource {
    fn measure<'a>(&'a self, request: MeasureRequest<'a>) -> BoxFuture<'a, Result<Inputs, String>> {
        Box::pin(async move {
            let summary = self
                .summary(request.model, request.policy.interval_seconds)
                .await?;
            Ok(inputs_from_summary(&summary, request.policy))
        })
    }
}

/// Escapes a PromQL label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The canary request-count query.
pub fn default_requests_query(model: &str, p: &CanaryPolicy) -> String {
    format!(
        "sum(increase(model_requests_total{{model=\"{}\",variant=\"{}\"}}[{}s]))",
        label(model),
        label(&p.canary_variant),
        p.interval_seconds
    )
}

/// The (numerator, optional denominator) queries of a check, or why there are none.
pub fn queries(
    model: &str,
    p: &CanaryPolicy,
    check: &CheckSpec,
) -> Result<(String, Option<String>), String> {
    if let Some(q) = &check.query {
        return Ok((q.clone(), check.total_query.clone()));
    }
    let m = label(model);
    let i = p.interval_seconds;
    let quantile = |q: f64, metric: &str, variant: &str| {
        format!(
            "histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{model=\"{m}\",variant=\"{}\"}}[{i}s])))",
            label(variant)
        )
    };
    match check.kind {
        CheckKind::LatencyRatio => Ok((
            quantile(0.95, metric::REQUEST_DURATION_SECONDS, &p.canary_variant),
            Some(quantile(
                0.95,
                metric::REQUEST_DURATION_SECONDS,
                &p.stable_variant,
            )),
        )),
        CheckKind::Confidence => Ok((
            quantile(0.5, metric::PREDICTION_CONFIDENCE, &p.canary_variant),
            None,
        )),
        CheckKind::Drift => Ok((
            format!(
                "max({}{{model=\"{m}\",variant=\"{}\"}})",
                metric::DATA_DRIFT,
                label(&p.canary_variant)
            ),
            None,
        )),
        CheckKind::ErrorRate | CheckKind::SuccessRate | CheckKind::Custom => Err(format!(
            "check {} ({:?}) needs `query` (and usually `totalQuery`) with a Prometheus source",
            check.name, check.kind
        )),
    }
}

/// Parses a Prometheus `/api/v1/query` response body. A vector or matrix with no series is
/// [`QueryResult::Empty`] (edge case E16: never an index error); more than one series is an
/// error naming the count; `"NaN"`, `"+Inf"` parse as such (the check calls them no data).
pub fn parse_query_response(body: &[u8]) -> QueryResult {
    let err = |message: String| QueryResult::Error {
        message,
        unavailable: false,
    };
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return err(format!("response is not JSON: {e}")),
    };
    if v.get("status").and_then(Value::as_str) != Some("success") {
        let kind = v
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let message = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return err(format!("{kind}: {message}"));
    }
    let Some(data) = v.get("data") else {
        return err("response has no data".to_string());
    };
    let result = data.get("result");
    let pair = match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => result,
        Some("vector") => {
            let series = result
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match series {
                [] => return QueryResult::Empty,
                [one] => one.get("value"),
                many => {
                    return err(format!(
                        "query returned {} series; a check query must return one (aggregate it with sum or max)",
                        many.len()
                    ));
                }
            }
        }
        other => return err(format!("unsupported result type {other:?}")),
    };
    let text = pair.and_then(|p| p.get(1)).and_then(Value::as_str);
    match text.map(str::parse::<f64>) {
        Some(Ok(x)) => QueryResult::Value(x),
        _ => err("sample value is not a number".to_string()),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn e16_empty_vector_is_empty_never_an_index_error() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_query_response(body), QueryResult::Empty);
        let missing = br#"{"status":"success","data":{"resultType":"vector"}}"#;
        assert_eq!(parse_query_response(missing), QueryResult::Empty);
    }

    #[test]
    fn parses_vector_scalar_nan_and_errors() {
        let one = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1764435600.0,"0.42"]}]}}"#;
        assert_eq!(parse_query_response(one), QueryResult::Value(0.42));
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1764435600.0,"7"]}}"#;
        assert_eq!(parse_query_response(scalar), QueryResult::Value(7.0));
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert!(matches!(parse_query_response(nan), QueryResult::Value(x) if x.is_nan()));
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert_eq!(
            parse_query_response(two),
            QueryResult::Error {
                message: "query returned 2 series; a check query must return one (aggregate it with sum or max)".into(),
                unavailable: false
            }
        );
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(
            parse_query_response(bad),
            QueryResult::Error {
                message: "bad_data: parse error at char 4".into(),
                unavailable: false
            }
        );
    }

    fn policy() -> CanaryPolicy {
        serde_json::from_value(serde_json::json!({
            "target": {"kind": "InferenceService", "name": "m"},
            "intervalSeconds": 120,
            "checks": [
                {"name": "latency", "kind": "LatencyRatio", "max": 1.2},
                {"name": "success", "kind": "SuccessRate", "min": 0.99,
                 "query": "sum(ok)", "totalQuery": "sum(all)"},
                {"name": "errors", "kind": "ErrorRate", "max": 0.01}
            ]
        }))
        .expect("policy")
    }

    #[test]
    fn default_queries_use_the_design_metric_names() {
        let p = policy();
        assert_eq!(
            default_requests_query("car\"loan", &p),
            r#"sum(increase(model_requests_total{model="car\"loan",variant="canary"}[120s]))"#
        );
        let (num, den) = queries("m", &p, &p.checks[0]).expect("latency");
        assert_eq!(
            num,
            r#"histogram_quantile(0.95, sum by (le) (rate(model_request_duration_seconds_bucket{model="m",variant="canary"}[120s])))"#
        );
        assert!(den.expect("stable").contains(r#"variant="stable""#));
        assert_eq!(
            queries("m", &p, &p.checks[1]),
            Ok(("sum(ok)".into(), Some("sum(all)".into())))
        );
        assert!(queries("m", &p, &p.checks[2]).is_err());
        assert_eq!(percent_encode("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
    }

    /// Serves canned Prometheus answers on a loopback port, one connection per query, and
    /// records the request lines it saw.
    async fn serve(answers: Vec<&'static str>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for body in answers {
                let (mut sock, _) = listener.accept().await.expect("accept");
                let mut buf = vec![0_u8; 8192];
                let n = sock.read(&mut buf).await.expect("read");
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                seen.push(text.lines().next().unwrap_or_default().to_string());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(response.as_bytes()).await.expect("write");
            }
            seen
        });
        (format!("http://{addr}"), handle)
    }

    #[tokio::test]
    async fn prometheus_source_reads_requests_and_ratio_checks_over_http() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let value = |v: &'static str| -> &'static str { v };
        let (url, server) = serve(vec![
            value(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"250"]}]}}"#),
            empty,
            value(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}}"#),
            value(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}}"#),
        ])
        .await;
        let mut p = policy();
        p.checks.truncate(2);
        let source = PrometheusSource::new(&url);
        let inputs = source
            .measure(MeasureRequest {
                model: "m",
                policy: &p,
            })
            .await
            .expect("up");
        assert_eq!(inputs.canary_requests, Some(250));
        assert!(
            matches!(&inputs.samples["latency"], Sample::Empty(q) if q.starts_with("query `histogram_quantile(0.95"))
        );
        assert_eq!(
            inputs.samples["success"],
            Sample::Ratio {
                numerator: 0.0,
                denominator: 0.0
            }
        );
        let seen = server.await.expect("server");
        assert_eq!(seen.len(), 4);
        assert!(
            seen[0].starts_with("GET /api/v1/query?query=sum%28increase%28model_requests_total"),
            "{}",
            seen[0]
        );
        assert_eq!(seen[2], "GET /api/v1/query?query=sum%28ok%29 HTTP/1.1");
    }

    #[tokio::test]
    async fn unreachable_prometheus_is_a_source_outage() {
        // Bind then drop to get a loopback port with nothing listening.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let source = PrometheusSource::new(&format!("http://127.0.0.1:{port}"));
        let p = policy();
        let err = source
            .measure(MeasureRequest {
                model: "m",
                policy: &p,
            })
            .await
            .expect_err("down");
        assert!(err.starts_with("cannot reach Prometheus"), "{err}");
    }
}
