//! A mock Kubernetes API server for the end-to-end test: no real API server can run here. It
//! holds a small object store (ModelMonitors, Jobs, the Lease), answers the calls
//! `driftwatch controller` makes (list and watch, get, create, replace, server-side apply of the
//! status, Events), pushes watch events when an object changes, and records every request. A
//! request outside that set gets a 404 `Status` and is recorded as unexpected, so the test can
//! assert that nothing else was asked.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    /// The status the mock answered.
    pub status: u16,
    /// Whether the call is one the controller is expected to make.
    pub expected: bool,
}

#[derive(Default)]
struct Store {
    /// Objects by collection path (`/apis/batch/v1/namespaces/ml/jobs`) and name.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    resource_version: u64,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
struct Mock {
    store: Arc<Mutex<Store>>,
    /// (collection path, watch event line).
    events: broadcast::Sender<(String, String)>,
}

/// A running mock API server; stops with the test process.
pub struct KubeMock {
    pub port: u16,
    store: Arc<Mutex<Store>>,
}

pub const MONITORS: &str = "/apis/driftwatch.io/v1alpha1/namespaces/ml/modelmonitors";
pub const JOBS: &str = "/apis/batch/v1/namespaces/ml/jobs";
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ml/leases";
pub const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";

impl KubeMock {
    /// Starts the mock on a free port with `monitors` (ModelMonitor objects) in namespace `ml`.
    pub fn start(monitors: Vec<Value>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut store = Store::default();
        for mut m in monitors {
            store.resource_version += 1;
            m["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
            let name = m["metadata"]["name"].as_str().unwrap().to_string();
            store
                .objects
                .entry(MONITORS.to_string())
                .or_default()
                .insert(name, m);
        }
        let store = Arc::new(Mutex::new(store));
        let mock = Mock {
            store: store.clone(),
            events: broadcast::channel(1024).0,
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(handle).with_state(mock);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { port, store }
    }

    /// A kubeconfig pointing at the mock, namespace `ml`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: mock, cluster: {{server: 'http://127.0.0.1:{}'}}}}]\n\
             users: [{{name: mock, user: {{token: e2e}}}}]\n\
             contexts: [{{name: mock, context: {{cluster: mock, user: mock, namespace: ml}}}}]\n\
             current-context: mock\n",
            self.port
        )
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.store.lock().unwrap().requests.clone()
    }

    /// The objects of a collection (e.g. [`JOBS`]).
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        self.store
            .lock()
            .unwrap()
            .objects
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
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

async fn handle(State(mock): State<Mock>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 24)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");

    let mut store = mock.store.lock().unwrap();
    let (code, answer, expected) = match (route(&path), method.as_str()) {
        (Some((collection, None, None)), "GET") if collection != EVENTS => {
            if watch {
                let rx = mock.events.subscribe();
                store.requests.push(Recorded {
                    method: method.to_string(),
                    path: path.clone(),
                    query,
                    content_type,
                    body,
                    status: 200,
                    expected: true,
                });
                drop(store);
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
                object["metadata"]["namespace"] = json!("ml");
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
    store.requests.push(Recorded {
        method: method.to_string(),
        path,
        query,
        content_type,
        body,
        status: code,
        expected,
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(answer.to_string()))
        .unwrap()
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
        .unwrap()
}
