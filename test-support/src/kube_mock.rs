//! A mock Kubernetes API server for tests (no real API server runs here): a real HTTP server on
//! a loopback port, so an in-process `kube::Client` and a separate `driftwatch controller`
//! process both talk to it. Every request is recorded ([`KubeMock::requests`]). It answers in
//! one of two modes:
//!
//! - **Stateful** ([`KubeMock::start`]): a small object store (ModelMonitors, Jobs, the Lease,
//!   Events in namespace [`NAMESPACE`]) answering the calls `driftwatch controller` makes: list
//!   and watch, get, create, replace, server-side apply of the status, Events and their merge
//!   patches. A change pushes a watch event. A request outside that set gets a 404 `Status` and
//!   is recorded as not expected.
//! - **Scripted** ([`KubeMock::scripted`] and [`KubeMock::expect`]): a list of [`Expect`]ations
//!   served in order. Each one asserts the method, the path, the exact query parameters, the
//!   content type and the JSON body of one request, and computes the response. A request that
//!   does not match, or that comes after the script, is a failure; [`KubeMock::finish`] panics
//!   with every failure, and when an expected request never came.
//!
//! A failure is answered with a 500 `Status` whose message names it, so the client sees an
//! error at once; [`KubeMock::finish`] is what fails the test.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

/// The namespace of the stateful store's objects and of [`KubeMock::kubeconfig`].
pub const NAMESPACE: &str = "ml";
/// The ModelMonitor collection of namespace `ml`.
pub const MONITORS: &str = "/apis/driftwatch.io/v1alpha1/namespaces/ml/modelmonitors";
/// The Job collection of namespace `ml`.
pub const JOBS: &str = "/apis/batch/v1/namespaces/ml/jobs";
/// The Lease collection of namespace `ml`.
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ml/leases";
/// The `events.k8s.io` Event collection of namespace `ml`.
pub const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";

/// How long [`KubeMock::finish`] waits for the rest of the script.
const SCRIPT_WITHIN: Duration = Duration::from_secs(5);

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// The URI path.
    pub path: String,
    /// The raw query string (empty without one).
    pub query: String,
    /// The `content-type` header (empty without one).
    pub content_type: String,
    /// The JSON body (`Null` when empty or, in stateful mode, not JSON).
    pub body: Value,
    /// The status the mock answered.
    pub status: u16,
    /// Stateful mode: the call is one the controller is expected to make. Scripted mode: the
    /// request matched its expectation.
    pub expected: bool,
}

type Check = Box<dyn Fn(&Value) + Send>;
type Respond = Box<dyn Fn(&Value) -> (u16, Value) + Send>;

/// One expected request of a scripted [`KubeMock`] and the response to it.
pub struct Expect {
    method: Method,
    path: String,
    query: BTreeSet<(String, String)>,
    content_type: Option<String>,
    check: Option<Check>,
    respond: Respond,
}

impl fmt::Debug for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expect")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("content_type", &self.content_type)
            .field("check", &self.check.is_some())
            .finish_non_exhaustive()
    }
}

impl Expect {
    /// Expects `method path` with no query parameters and any content type, answering 200 with
    /// an empty object.
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

    /// The exact set of query parameters, as sent (not percent-decoded), e.g.
    /// `[("fieldManager", "driftwatch"), ("force", "true")]`.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// The exact `content-type` header.
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.to_string());
        self
    }

    /// Assertions on the JSON body (`Null` when the request has none). A panic in `f` is a
    /// failure of the request, reported by [`KubeMock::finish`].
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
    /// `fieldManager=driftwatch&force=true`, answered 200 with the body echoed.
    pub fn apply(path: &str) -> Self {
        Self::new(Method::PATCH, path)
            .query(&[("fieldManager", "driftwatch"), ("force", "true")])
            .content_type("application/apply-patch+yaml")
            .respond(|b| (200, b.clone()))
    }

    /// A Kubernetes Event POST (`events.k8s.io/v1`, `application/json`) in namespace `ns` with
    /// this `reason` and `type`, reported by `driftwatch` about a ModelMonitor; answered 201 with
    /// the body echoed.
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

/// A `Status` body as the API server sends it with an error.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A 404 answer: the `Status` the API server sends for `kind` (e.g. `jobs.batch`) `name`
/// absent.
pub fn not_found(kind: &str, name: &str) -> (u16, Value) {
    (
        404,
        status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
    )
}

/// A 409 answer: a `Conflict` `Status` with `message`.
pub fn conflict(message: &str) -> (u16, Value) {
    (409, status(409, "Conflict", message))
}

#[derive(Default)]
struct Store {
    /// Scripted mode: expectations answer; else the object store does.
    scripted: bool,
    /// Objects by collection path (`/apis/batch/v1/namespaces/ml/jobs`) and name.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    resource_version: u64,
    /// The expectations not yet served.
    script: VecDeque<Expect>,
    requests: Vec<Recorded>,
    /// Scripted mode: what went wrong, in order.
    failures: Vec<String>,
}

type Shared = Arc<Mutex<Store>>;

fn lock(store: &Shared) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone)]
struct Mock {
    store: Shared,
    /// (collection path, watch event line).
    events: broadcast::Sender<(String, String)>,
}

/// A running mock API server on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct KubeMock {
    port: u16,
    store: Shared,
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("scripted", &self.scripted)
            .field("requests", &self.requests.len())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl KubeMock {
    /// Starts a stateful mock on a free port with `monitors` (ModelMonitor objects, each with a
    /// `metadata.name`) in namespace `ml`.
    ///
    /// # Panics
    /// When a monitor has no name, or no port can be bound.
    pub fn start(monitors: Vec<Value>) -> Self {
        let mut store = Store::default();
        for mut m in monitors {
            store.resource_version += 1;
            m["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
            let name = m["metadata"]["name"]
                .as_str()
                .expect("a ModelMonitor with metadata.name")
                .to_string();
            store
                .objects
                .entry(MONITORS.to_string())
                .or_default()
                .insert(name, m);
        }
        Self::serve(store)
    }

    /// Starts a scripted mock on a free port with an empty script (any request is a failure
    /// until [`KubeMock::expect`] adds expectations).
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn scripted() -> Self {
        Self::serve(Store {
            scripted: true,
            ..Store::default()
        })
    }

    fn serve(store: Store) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("the mock API server cannot bind 127.0.0.1: {e}"));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let store = Arc::new(Mutex::new(store));
        let mock = Mock {
            store: store.clone(),
            events: broadcast::channel(1024).0,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        // Its own thread and runtime: serves sync tests and outlives no test runtime's tasks.
        // Dropping the runtime at the end of the thread ends every connection (open watches
        // included).
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the mock API server");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let app = Router::new().fallback(handle).with_state(mock);
                tokio::select! {
                    served = axum::serve(listener, app) => {
                        if let Err(e) = served {
                            eprintln!("the mock API server stopped: {e}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        });
        Self {
            port,
            store,
            _stop: stop,
        }
    }

    /// Appends `script` to the expectations a scripted mock serves in order.
    ///
    /// # Panics
    /// When the mock is stateful.
    pub fn expect(&self, script: Vec<Expect>) {
        let mut store = lock(&self.store);
        assert!(store.scripted, "KubeMock::expect on a stateful mock");
        store.script.extend(script);
    }

    /// The port the mock listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, the API server's URL (e.g. for `kube::Config::new`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig (YAML) pointing at the mock with a token user, namespace `ml`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: mock, cluster: {{server: '{}'}}}}]\n\
             users: [{{name: mock, user: {{token: e2e}}}}]\n\
             contexts: [{{name: mock, context: {{cluster: mock, user: mock, namespace: {NAMESPACE}}}}}]\n\
             current-context: mock\n",
            self.url()
        )
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.store).requests.clone()
    }

    /// The stored objects of a collection (e.g. [`JOBS`]), by name; empty in scripted mode.
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        lock(&self.store)
            .objects
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Ends a test's use of the mock: waits up to 5 s for the rest of the script to be served,
    /// then checks that everything went as expected.
    ///
    /// # Panics
    /// Scripted mode: with every request that did not match its expectation (method, path,
    /// query, content type, a body that is not JSON, a failed [`Expect::check`]) or came after
    /// the script, and when an expected request never came. Stateful mode: when a request was
    /// outside the calls the mock serves.
    pub async fn finish(&self) {
        let end = Instant::now() + SCRIPT_WITHIN;
        while !lock(&self.store).script.is_empty() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let store = lock(&self.store);
        let mut failures = store.failures.clone();
        if let Some(next) = store.script.front() {
            failures.push(format!(
                "request {} ({} {}) never came ({} expectations left)",
                store.requests.len(),
                next.method,
                next.path,
                store.script.len()
            ));
        }
        if !store.scripted {
            failures.extend(
                store
                    .requests
                    .iter()
                    .filter(|r| !r.expected)
                    .map(|r| format!("unexpected request {r:?}")),
            );
        }
        drop(store);
        assert!(
            failures.is_empty(),
            "the mock API server saw failures:\n{}",
            failures.join("\n")
        );
    }
}

fn list_kind(collection: &str) -> (&'static str, &'static str) {
    match collection {
        MONITORS => ("driftwatch.io/v1alpha1", "ModelMonitorList"),
        JOBS => ("batch/v1", "JobList"),
        LEASES => ("coordination.k8s.io/v1", "LeaseList"),
        _ => ("v1", "List"),
    }
}

/// Splits `/…/<collection>/<name>[/status]` into the collection, the name and the subresource.
fn route(path: &str) -> Option<(&'static str, Option<String>, Option<String>)> {
    for collection in [MONITORS, JOBS, LEASES, EVENTS] {
        if path == collection {
            return Some((collection, None, None));
        }
        if let Some(rest) = path
            .strip_prefix(collection)
            .and_then(|r| r.strip_prefix('/'))
        {
            let mut parts = rest.splitn(2, '/');
            let name = parts.next().map(str::to_string);
            let sub = parts.next().map(str::to_string);
            return Some((collection, name, sub));
        }
    }
    None
}

/// Merges `patch` into `target` (objects key by key, everything else replaced).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// A request's parts, read once.
struct Incoming {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    bytes: Bytes,
}

impl Incoming {
    fn record(self, body: Value, status: u16, expected: bool) -> Recorded {
        Recorded {
            method: self.method.to_string(),
            path: self.path,
            query: self.query,
            content_type: self.content_type,
            body,
            status,
            expected,
        }
    }
}

async fn handle(State(mock): State<Mock>, request: Request) -> Response {
    let incoming = Incoming {
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        query: request.uri().query().unwrap_or_default().to_string(),
        content_type: request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        bytes: axum::body::to_bytes(request.into_body(), 1 << 24)
            .await
            .unwrap_or_default(),
    };
    let mut store = lock(&mock.store);
    if store.scripted {
        let (code, answer) = scripted(&mut store, incoming);
        json_response(code, &answer)
    } else {
        stateful(&mock, &mut store, incoming)
    }
}

/// A JSON answer with status `code`.
fn json_response(code: u16, answer: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(answer.to_string()))
        .expect("a response")
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Scripted mode: matches the request with the next expectation and answers it.
fn scripted(store: &mut Store, incoming: Incoming) -> (u16, Value) {
    let index = store.requests.len();
    let what = if incoming.query.is_empty() {
        format!("request {index}: {} {}", incoming.method, incoming.path)
    } else {
        format!(
            "request {index}: {} {}?{}",
            incoming.method, incoming.path, incoming.query
        )
    };
    let mut problems = Vec::new();
    let body: Value = if incoming.bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&incoming.bytes).unwrap_or_else(|e| {
            problems.push(format!("body is not JSON: {e}"));
            Value::Null
        })
    };
    let Some(expect) = store.script.pop_front() else {
        let failure = format!("unexpected {what} after the script");
        store.failures.push(failure.clone());
        store.requests.push(incoming.record(body, 500, false));
        return (
            500,
            status(500, "InternalError", &format!("kube mock: {failure}")),
        );
    };
    if incoming.method != expect.method {
        problems.push(format!("method: expected {}", expect.method));
    }
    if incoming.path != expect.path {
        problems.push(format!("path: expected {}", expect.path));
    }
    let query: BTreeSet<(String, String)> = incoming
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    if query != expect.query {
        problems.push(format!(
            "query parameters: expected {:?}, got {query:?}",
            expect.query
        ));
    }
    if let Some(ct) = &expect.content_type
        && incoming.content_type != *ct
    {
        problems.push(format!(
            "content type: expected {ct}, got {:?}",
            incoming.content_type
        ));
    }
    if problems.is_empty()
        && let Some(check) = &expect.check
        && let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| check(&body)))
    {
        problems.push(format!("body check failed: {}", panic_text(&*payload)));
    }
    let answer = if problems.is_empty() {
        std::panic::catch_unwind(AssertUnwindSafe(|| (expect.respond)(&body))).map_err(|payload| {
            problems.push(format!("respond failed: {}", panic_text(&*payload)));
        })
    } else {
        Err(())
    };
    match answer {
        Ok((code, answer)) => {
            store.requests.push(incoming.record(body, code, true));
            (code, answer)
        }
        Err(()) => {
            let failure = format!("{what} (body {body}): {}", problems.join("; "));
            store.failures.push(failure.clone());
            store.requests.push(incoming.record(body, 500, false));
            (
                500,
                status(500, "InternalError", &format!("kube mock: {failure}")),
            )
        }
    }
}

/// Stateful mode: answers from the object store (a watch is held open).
fn stateful(mock: &Mock, store: &mut Store, incoming: Incoming) -> Response {
    let body: Value = serde_json::from_slice(&incoming.bytes).unwrap_or(Value::Null);
    let watch = incoming
        .query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let path = incoming.path.clone();
    let method = incoming.method.clone();
    let (code, answer, expected) = match (route(&path), method.as_str()) {
        (Some((collection, None, None)), "GET") if collection != EVENTS => {
            if watch {
                let rx = mock.events.subscribe();
                store.requests.push(incoming.record(body, 200, true));
                return watch_response(collection, rx);
            }
            let (api_version, kind) = list_kind(collection);
            let items: Vec<Value> = store
                .objects
                .get(collection)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            let rv = store.resource_version.to_string();
            (
                200,
                json!({"apiVersion": api_version, "kind": kind,
                       "metadata": {"resourceVersion": rv}, "items": items}),
                true,
            )
        }
        (Some((collection, None, None)), "POST") => {
            let name = body["metadata"]["name"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    body["metadata"]["generateName"]
                        .as_str()
                        .map(|g| format!("{g}{}", store.resource_version + 1))
                })
                .unwrap_or_default();
            if store
                .objects
                .get(collection)
                .is_some_and(|m| m.contains_key(&name))
            {
                (
                    409,
                    status(409, "AlreadyExists", &format!("{name} already exists")),
                    true,
                )
            } else {
                store.resource_version += 1;
                let mut object = body.clone();
                object["metadata"]["name"] = json!(name);
                object["metadata"]["namespace"] = json!(NAMESPACE);
                object["metadata"]["uid"] = json!(format!("uid-{}", store.resource_version));
                object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
                store
                    .objects
                    .entry(collection.to_string())
                    .or_default()
                    .insert(name, object.clone());
                let _ = mock
                    .events
                    .send((collection.to_string(), event("ADDED", &object)));
                (201, object, true)
            }
        }
        (Some((collection, Some(name), None)), "GET") => {
            match store.objects.get(collection).and_then(|m| m.get(&name)) {
                Some(o) => (200, o.clone(), true),
                None => (
                    404,
                    status(404, "NotFound", &format!("{name} not found")),
                    true,
                ),
            }
        }
        (Some((collection, Some(name), None)), "PUT") => {
            let current = store
                .objects
                .get(collection)
                .and_then(|m| m.get(&name))
                .cloned();
            match current {
                Some(c)
                    if c["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"] =>
                {
                    (
                        409,
                        status(409, "Conflict", "the object has been modified"),
                        true,
                    )
                }
                Some(_) => {
                    store.resource_version += 1;
                    let mut object = body.clone();
                    object["metadata"]["resourceVersion"] =
                        json!(store.resource_version.to_string());
                    store
                        .objects
                        .entry(collection.to_string())
                        .or_default()
                        .insert(name, object.clone());
                    (200, object, true)
                }
                None => (
                    404,
                    status(404, "NotFound", &format!("{name} not found")),
                    true,
                ),
            }
        }
        (Some((collection, Some(name), Some(sub))), "PATCH")
            if collection == MONITORS && sub == "status" =>
        {
            let current = store
                .objects
                .get(collection)
                .and_then(|m| m.get(&name))
                .cloned();
            match current {
                Some(mut object) => {
                    store.resource_version += 1;
                    object["status"] = body["status"].clone();
                    merge(
                        &mut object["metadata"],
                        &json!({"resourceVersion": store.resource_version.to_string()}),
                    );
                    store
                        .objects
                        .entry(collection.to_string())
                        .or_default()
                        .insert(name, object.clone());
                    let _ = mock
                        .events
                        .send((collection.to_string(), event("MODIFIED", &object)));
                    (200, object, true)
                }
                None => (
                    404,
                    status(404, "NotFound", &format!("{name} not found")),
                    true,
                ),
            }
        }
        (Some((collection, Some(name), None)), "PATCH") if collection == EVENTS => {
            // The event recorder aggregates repeats into the Event's `series` (a merge patch).
            let current = store
                .objects
                .get(collection)
                .and_then(|m| m.get(&name))
                .cloned();
            match current {
                Some(mut object) => {
                    store.resource_version += 1;
                    merge(&mut object, &body);
                    store
                        .objects
                        .entry(collection.to_string())
                        .or_default()
                        .insert(name, object.clone());
                    (200, object, true)
                }
                None => (
                    404,
                    status(404, "NotFound", &format!("{name} not found")),
                    true,
                ),
            }
        }
        _ => (
            404,
            status(
                404,
                "NotFound",
                &format!("the mock does not serve {method} {path}"),
            ),
            false,
        ),
    };
    store.requests.push(incoming.record(body, code, expected));
    json_response(code, &answer)
}

fn event(kind: &str, object: &Value) -> String {
    format!("{}\n", json!({"type": kind, "object": object}))
}

/// A watch: the collection's later changes as JSON lines, held open until the client leaves.
fn watch_response(collection: &'static str, rx: broadcast::Receiver<(String, String)>) -> Response {
    let stream = futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok((c, line)) if c == collection => {
                    return Some((Ok::<_, Infallible>(Bytes::from(line)), rx));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a watch response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// One HTTP/1.1 request to the mock: the status and the JSON answer.
    fn call(mock: &KubeMock, method: &str, target: &str, ct: &str, body: &str) -> (u16, Value) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", mock.port())).unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ct}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let code = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
        let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        (code, serde_json::from_str(json).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn scripted_mode_answers_matching_requests_in_order() {
        let mock = KubeMock::scripted();
        mock.expect(vec![
            Expect::new(Method::GET, &format!("{JOBS}/a"))
                .respond(|_| not_found("jobs.batch", "a")),
            Expect::apply(&format!("{MONITORS}/m/status"))
                .check(|b| assert_eq!(b["kind"], "ModelMonitor")),
        ]);
        assert_eq!(call(&mock, "GET", &format!("{JOBS}/a"), "", "").0, 404);
        let (code, echoed) = call(
            &mock,
            "PATCH",
            &format!("{MONITORS}/m/status?force=true&fieldManager=driftwatch"),
            "application/apply-patch+yaml",
            r#"{"kind":"ModelMonitor"}"#,
        );
        assert_eq!((code, echoed), (200, json!({"kind": "ModelMonitor"})));
        mock.finish().await;
        let requests = mock.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|r| r.expected));
    }

    #[tokio::test]
    async fn scripted_mode_reports_a_mismatch_an_extra_request_and_a_missing_one() {
        let mock = KubeMock::scripted();
        mock.expect(vec![
            Expect::apply(&format!("{MONITORS}/m/status"))
                .check(|b| assert_eq!(b["kind"], "ModelMonitor", "the kind")),
        ]);
        // Without force=true: a failure (its body check does not run).
        let (code, _) = call(
            &mock,
            "PATCH",
            &format!("{MONITORS}/m/status?fieldManager=driftwatch"),
            "application/apply-patch+yaml",
            "{}",
        );
        assert_eq!(code, 500);
        assert_eq!(call(&mock, "GET", JOBS, "", "").0, 500);
        mock.expect(vec![Expect::new(Method::DELETE, JOBS)]);
        let failed = tokio::spawn(async move { mock.finish().await }).await;
        let text = panic_text(&*failed.expect_err("finish fails").into_panic());
        assert!(text.contains("query parameters"), "{text}");
        assert!(text.contains("unexpected request 1: GET"), "{text}");
        assert!(text.contains("request 2 (DELETE"), "{text}");
    }

    #[tokio::test]
    async fn scripted_mode_reports_a_failed_body_check() {
        let mock = KubeMock::scripted();
        mock.expect(vec![
            Expect::new(Method::POST, JOBS).check(|b| assert_eq!(b["kind"], "Job", "the kind")),
        ]);
        assert_eq!(call(&mock, "POST", JOBS, "application/json", "{}").0, 500);
        let failed = tokio::spawn(async move { mock.finish().await }).await;
        let text = panic_text(&*failed.expect_err("finish fails").into_panic());
        assert!(text.contains("body check failed"), "{text}");
        assert!(text.contains("the kind"), "{text}");
    }

    #[tokio::test]
    async fn stateful_mode_stores_created_objects_and_flags_what_it_does_not_serve() {
        let mock = KubeMock::start(vec![json!({"metadata": {"name": "car-loan"}})]);
        let (code, job) = call(
            &mock,
            "POST",
            JOBS,
            "application/json",
            r#"{"kind":"Job","metadata":{"name":"j"}}"#,
        );
        assert_eq!((code, &job["metadata"]["uid"]), (201, &json!("uid-2")));
        assert_eq!(
            call(&mock, "POST", JOBS, "application/json", &job.to_string()).0,
            409
        );
        assert_eq!(mock.objects(JOBS), vec![job]);
        let (code, list) = call(&mock, "GET", MONITORS, "", "");
        assert_eq!(
            (code, list["items"].as_array().map(Vec::len)),
            (200, Some(1))
        );
        mock.finish().await;
        assert_eq!(call(&mock, "DELETE", JOBS, "", "").0, 404);
        let failed = tokio::spawn(async move { mock.finish().await }).await;
        let text = panic_text(&*failed.expect_err("finish fails").into_panic());
        assert!(text.contains("DELETE"), "{text}");
    }
}
