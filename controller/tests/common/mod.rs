//! A mocked Kubernetes API server: a `tower::Service` (tower-test's mock) behind a real
//! `kube::Client`, answering a scripted list of expected requests in order. Each expectation
//! asserts the method, the path, the query parameters, the content type and the JSON body of
//! one request and returns an API-shaped response; a request beyond the script fails the test.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle};

type Check = Box<dyn Fn(&Value) + Send>;
type Respond = Box<dyn Fn(&Value) -> (u16, Value) + Send>;

/// One expected request and the response to it.
pub struct Expect {
    method: Method,
    path: String,
    query: BTreeSet<(String, String)>,
    content_type: Option<&'static str>,
    check: Option<Check>,
    respond: Respond,
}

impl Expect {
    /// Expects `method path` with no query parameters, answering 200 with an empty object.
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_string(),
            query: BTreeSet::new(),
            content_type: None,
            check: None,
            respond: Box::new(|_| (200, json!({}))),
        }
    }

    /// The exact set of query parameters, e.g. `[("fieldManager", "driftwatch"), ("force", "true")]`.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// The exact `content-type` header.
    pub fn content_type(mut self, ct: &'static str) -> Self {
        self.content_type = Some(ct);
        self
    }

    /// Assertions on the JSON body.
    pub fn check(mut self, f: impl Fn(&Value) + Send + 'static) -> Self {
        self.check = Some(Box::new(f));
        self
    }

    /// The response: status code and JSON, computed from the request body.
    pub fn respond(mut self, f: impl Fn(&Value) -> (u16, Value) + Send + 'static) -> Self {
        self.respond = Box::new(f);
        self
    }

    /// Server-side apply to `path`: PATCH, `application/apply-patch+yaml`,
    /// `fieldManager=driftwatch&force=true`, answered with the body echoed.
    pub fn apply(path: &str) -> Self {
        Self::new(Method::PATCH, path)
            .query(&[("fieldManager", "driftwatch"), ("force", "true")])
            .content_type("application/apply-patch+yaml")
            .respond(|b| (200, b.clone()))
    }

    /// A Kubernetes Event POST with this `reason` and `type` in namespace `ns`, echoed back.
    pub fn event(ns: &str, reason: &'static str, type_: &'static str) -> Self {
        Self::new(
            Method::POST,
            &format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"),
        )
        .content_type("application/json")
        .check(move |b| {
            assert_eq!(b["reason"], reason, "event reason in {b}");
            assert_eq!(b["type"], type_, "event type in {b}");
            assert_eq!(b["reportingController"], "driftwatch");
            assert_eq!(b["regarding"]["kind"], "ModelMonitor");
        })
        .respond(|b| (201, b.clone()))
    }
}

/// A 404 Status body as the API server sends it.
pub fn not_found(kind: &str, name: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound", "code": 404}),
    )
}

/// A 409 Conflict Status body.
pub fn conflict(message: &str) -> (u16, Value) {
    (
        409,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": "Conflict", "code": 409}),
    )
}

/// The scripted server.
pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// A client over a fresh mocked server (default namespace `ml`).
pub fn mocked_client() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "ml"), ApiServer(handle))
}

impl ApiServer {
    /// Serves `script` in order, then fails on any further request made before the client is
    /// dropped (or within 5 s).
    /// The join handle yields the request bodies seen, in order.
    pub fn run(self, script: Vec<Expect>) -> JoinHandle<Vec<Value>> {
        let mut handle = self.0;
        tokio::spawn(async move {
            let mut bodies = Vec::new();
            for (i, expect) in script.into_iter().enumerate() {
                let next =
                    tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await;
                let (request, send) = next
                    .unwrap_or_else(|_| {
                        panic!("request {i} ({} {}) never came", expect.method, expect.path)
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "client dropped before request {i} ({} {})",
                            expect.method, expect.path
                        )
                    });
                let what = format!("request {i}: {} {}", request.method(), request.uri());
                assert_eq!(request.method(), expect.method, "{what}");
                assert_eq!(request.uri().path(), expect.path, "{what}");
                let query: BTreeSet<(String, String)> = request
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                assert_eq!(query, expect.query, "{what}");
                if let Some(ct) = expect.content_type {
                    let got = request
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(got, Some(ct), "{what}");
                }
                let bytes = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .expect("request body");
                let body: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"))
                };
                if let Some(check) = &expect.check {
                    check(&body);
                }
                let (code, response) = (expect.respond)(&body);
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).expect("status code"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&response).expect("json")))
                    .expect("response");
                send.send_response(response);
                bodies.push(body);
            }
            // The test drops its client when done, which ends the stream; anything before that
            // is a request the script did not allow.
            if let Ok(Some((request, _))) =
                tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await
            {
                panic!(
                    "unexpected request after the script: {} {}",
                    request.method(),
                    request.uri()
                );
            }
            bodies
        })
    }
}
