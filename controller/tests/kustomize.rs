//! Checks on the kustomize manifests in `deploy/`: each overlay is rendered with
//! `kubectl kustomize` and every object it produces is parsed into its Kubernetes type
//! (k8s-openapi, or kube's `DynamicObject` for the Prometheus Operator's kinds). k8s-openapi
//! ignores unknown fields, so each typed object is also serialised back and compared with the
//! rendered document: a misspelt or misplaced field fails instead of vanishing. Then the
//! manifests' promises are asserted: the objects per overlay, probes on the right port and paths,
//! the security context, resource requests, the config file, the alert rules, and the controller's
//! least-privilege RBAC in the namespace it acts in.
//!
//! Also checks that the generated `deploy/base/prometheusrule.yaml` and the RBAC copies in
//! `deploy/base/rbac/` are current.
//!
//! Needs kubectl (1.14 or later, which embeds kustomize); `KUBECTL` overrides the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Probe, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

/// Where the service and the controller's Deployment run in both overlays.
const SERVICE_NAMESPACE: &str = "driftwatch";
/// The service's HTTP port (`server.listen` in `deploy/base/driftwatch.toml`).
const HTTP_PORT: i32 = 8080;
/// The controller's Alertmanager webhook receiver (`driftwatch controller --listen` default).
const WEBHOOK_PORT: i32 = 8081;
/// The controller's ServiceAccount, Role, RoleBinding and leader Lease.
const CONTROLLER: &str = "driftwatch-controller";

const KUBECTL_HELP: &str = "kubectl with kustomize is required to render deploy/overlays: install \
    kubectl (1.14 or later) from https://kubernetes.io/docs/tasks/tools/ — or `apt-get install \
    kubectl` from the Kubernetes apt repository (https://pkgs.k8s.io) — or set KUBECTL to its path";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `kubectl kustomize deploy/overlays/<overlay>`, run from the repository root.
fn kustomize(overlay: &str) -> String {
    let kubectl = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let dir = format!("deploy/overlays/{overlay}");
    let output = match Command::new(&kubectl)
        .args(["kustomize", &dir])
        .current_dir(repo())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{KUBECTL_HELP} (`{}` not found)", kubectl.to_string_lossy())
        }
        Err(e) => panic!(
            "cannot run `{} kustomize {dir}`: {e}",
            kubectl.to_string_lossy()
        ),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let hint = if stderr.contains("unknown command") {
            KUBECTL_HELP
        } else {
            ""
        };
        panic!(
            "`kubectl kustomize {dir}` failed ({}):\n{stderr}\n{hint}",
            output.status
        );
    }
    String::from_utf8(output.stdout).expect("kustomize output is UTF-8")
}

/// The YAML documents of `text` as JSON values (empty documents skipped).
fn documents(text: &str) -> Vec<Json> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .filter(|doc: &Json| !doc.is_null())
        .collect()
}

/// The first place where `a` and `b` differ (numbers compared by value, so `1` equals `1.0`).
fn first_difference(a: &Json, b: &Json, path: &str) -> Option<String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{path}.{k}")),
                (u, v) => Some(format!("{path}.{k}: {u:?} vs {v:?}")),
            })
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        (Json::Number(x), Json::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// Parses `doc` as `T` and checks that nothing was dropped on the way (k8s-openapi skips unknown
/// fields silently).
fn typed<T: DeserializeOwned + Serialize>(doc: &Json, what: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what} is not a valid object of its kind: {e}"));
    let back = serde_json::to_value(&object).expect("serialise");
    if let Some(diff) = first_difference(doc, &back, "") {
        panic!(
            "{what}: the rendered document and its k8s-openapi parse differ (a misspelt or misplaced field?) at {diff}"
        );
    }
    object
}

/// One rendered overlay, each object in its type.
#[derive(Debug, Default)]
struct Rendered {
    /// (kind, namespace, name) of every object; a generated ConfigMap without its hash suffix.
    ids: BTreeSet<(String, String, String)>,
    namespaces: Vec<Namespace>,
    crds: Vec<CustomResourceDefinition>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    claims: Vec<PersistentVolumeClaim>,
    deployments: Vec<Deployment>,
    network_policies: Vec<NetworkPolicy>,
    /// ServiceMonitors and PrometheusRules.
    monitoring: Vec<DynamicObject>,
}

fn render(overlay: &str) -> Rendered {
    let mut r = Rendered::default();
    for doc in documents(&kustomize(overlay)) {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!name.is_empty(), "{overlay}: a {kind} without a name");
        let what = format!("{overlay}: {kind} {namespace}/{name}");
        match kind.as_str() {
            "Namespace" => r.namespaces.push(typed(&doc, &what)),
            "CustomResourceDefinition" => r.crds.push(typed(&doc, &what)),
            "ServiceAccount" => r.service_accounts.push(typed(&doc, &what)),
            "Role" => r.roles.push(typed(&doc, &what)),
            "RoleBinding" => r.role_bindings.push(typed(&doc, &what)),
            "ConfigMap" => r.config_maps.push(typed(&doc, &what)),
            "Service" => r.services.push(typed(&doc, &what)),
            "PersistentVolumeClaim" => r.claims.push(typed(&doc, &what)),
            "Deployment" => r.deployments.push(typed(&doc, &what)),
            "NetworkPolicy" => r.network_policies.push(typed(&doc, &what)),
            "ServiceMonitor" | "PrometheusRule" => {
                assert_eq!(
                    api_version, "monitoring.coreos.com/v1",
                    "{what}: apiVersion"
                );
                let object: DynamicObject = serde_json::from_value(doc.clone())
                    .unwrap_or_else(|e| panic!("{what}: not a Kubernetes object: {e}"));
                assert!(object.data["spec"].is_object(), "{what}: no spec");
                r.monitoring.push(object);
            }
            other => panic!("{what}: unexpected kind {other} ({api_version})"),
        }
        let cluster_scoped = ["Namespace", "CustomResourceDefinition"].contains(&kind.as_str());
        assert_eq!(
            namespace.is_empty(),
            cluster_scoped,
            "{what}: namespaced objects need a namespace (else they land in the current \
             context's), cluster-scoped ones must have none"
        );
        // configMapGenerator appends a hash of the content: `driftwatch-config-<10 chars>`.
        let id_name = match name.rsplit_once('-') {
            Some((stem, hash)) if kind == "ConfigMap" && hash.len() == 10 => stem.to_string(),
            _ => name,
        };
        assert!(
            r.ids.insert((kind, namespace, id_name)),
            "{what}: rendered twice"
        );
    }
    r
}

fn named<'a, T>(items: &'a [T], namespace: &str, name: &str) -> &'a T
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    items
        .iter()
        .find(|i| {
            i.metadata().name.as_deref() == Some(name)
                && i.metadata().namespace.as_deref().unwrap_or_default() == namespace
        })
        .unwrap_or_else(|| panic!("no {} {namespace}/{name}", T::KIND))
}

fn dynamic<'a>(r: &'a Rendered, kind: &str, name: &str) -> &'a DynamicObject {
    r.monitoring
        .iter()
        .find(|o| {
            o.types.as_ref().map(|t| t.kind.as_str()) == Some(kind)
                && o.metadata.name.as_deref() == Some(name)
                && o.metadata.namespace.as_deref() == Some(SERVICE_NAMESPACE)
        })
        .unwrap_or_else(|| panic!("no {kind} {SERVICE_NAMESPACE}/{name}"))
}

/// The objects every overlay renders, with the controller's Role and RoleBinding in `acting`.
fn expected_ids(acting: &str) -> BTreeSet<(String, String, String)> {
    let ns = SERVICE_NAMESPACE;
    [
        ("Namespace", "", "driftwatch"),
        (
            "CustomResourceDefinition",
            "",
            "modelmonitors.driftwatch.io",
        ),
        ("ServiceAccount", ns, "driftwatch"),
        ("ServiceAccount", ns, CONTROLLER),
        ("Role", acting, CONTROLLER),
        ("RoleBinding", acting, CONTROLLER),
        ("ConfigMap", ns, "driftwatch-config"),
        ("Service", ns, "driftwatch"),
        ("Service", ns, CONTROLLER),
        ("PersistentVolumeClaim", ns, "driftwatch-checkpoint"),
        ("Deployment", ns, "driftwatch"),
        ("Deployment", ns, CONTROLLER),
        ("NetworkPolicy", ns, "driftwatch"),
        ("NetworkPolicy", ns, CONTROLLER),
        ("ServiceMonitor", ns, "driftwatch"),
        ("PrometheusRule", ns, "driftwatch"),
    ]
    .into_iter()
    .map(|(k, n, m)| (k.to_string(), n.to_string(), m.to_string()))
    .collect()
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec.template.spec.as_ref().expect("a pod spec")
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn container<'a>(d: &'a Deployment, name: &str) -> &'a Container {
    pod_spec(d)
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The container port a probe or Service port refers to (by number or by name).
fn resolve(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(p) => *p,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .unwrap_or_else(|| panic!("container {} has no port named {name}", c.name)),
    }
}

fn http_probe(c: &Container, probe: Option<&Probe>, which: &str, path: &str) {
    let get = probe
        .and_then(|p| p.http_get.as_ref())
        .unwrap_or_else(|| panic!("{}: no HTTP {which} probe", c.name));
    assert_eq!(
        get.path.as_deref(),
        Some(path),
        "{}: {which} probe path",
        c.name
    );
    assert_eq!(
        resolve(c, &get.port),
        HTTP_PORT,
        "{}: {which} probe port",
        c.name
    );
}

/// Non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault
/// seccomp (the Pod Security Standards' `restricted` profile), and resource requests and limits.
fn hardened(d: &Deployment) {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let pod = pod_spec(d);
    let psc = pod
        .security_context
        .as_ref()
        .expect("a pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "{name}: pod runAsNonRoot");
    assert!(
        psc.run_as_user.is_some_and(|u| u != 0),
        "{name}: pod runAsUser"
    );
    let pod_seccomp = psc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
    assert_eq!(
        pod_seccomp,
        Some("RuntimeDefault"),
        "{name}: pod seccompProfile"
    );
    for c in &pod.containers {
        let sc = c
            .security_context
            .as_ref()
            .expect("a container securityContext");
        assert_eq!(
            sc.run_as_non_root,
            Some(true),
            "{name}/{}: runAsNonRoot",
            c.name
        );
        assert_eq!(
            sc.read_only_root_filesystem,
            Some(true),
            "{name}/{}: readOnlyRootFilesystem",
            c.name
        );
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{name}/{}: allowPrivilegeEscalation",
            c.name
        );
        let drop = sc.capabilities.as_ref().and_then(|cap| cap.drop.clone());
        assert_eq!(
            drop,
            Some(vec!["ALL".to_string()]),
            "{name}/{}: capabilities.drop",
            c.name
        );
        assert!(
            sc.capabilities
                .as_ref()
                .is_some_and(|cap| cap.add.is_none()),
            "{name}/{}: no capability added",
            c.name
        );
        let seccomp = sc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
        assert_eq!(
            seccomp,
            Some("RuntimeDefault"),
            "{name}/{}: seccompProfile",
            c.name
        );
        let resources = c.resources.as_ref().expect("resources");
        let requests = resources.requests.clone().unwrap_or_default();
        let limits = resources.limits.clone().unwrap_or_default();
        for key in ["cpu", "memory"] {
            assert!(
                requests.contains_key(key),
                "{name}/{}: no {key} request",
                c.name
            );
            assert!(
                limits.contains_key(key),
                "{name}/{}: no {key} limit",
                c.name
            );
        }
    }
}

fn json(value: impl Serialize) -> Json {
    serde_json::to_value(value).expect("serialise")
}

/// `groups` of rules/driftwatch.rules.yaml.
fn rule_groups() -> Json {
    let rules = documents(&read("rules/driftwatch.rules.yaml"));
    assert_eq!(rules.len(), 1, "rules/driftwatch.rules.yaml: one document");
    let groups = rules[0]["groups"].clone();
    assert!(
        groups.as_array().is_some_and(|g| !g.is_empty()),
        "rules: no groups"
    );
    groups
}

/// The service: Deployment, config file, probes, volumes, Service, ServiceMonitor, PrometheusRule.
fn check_service(r: &Rendered) {
    let ns = SERVICE_NAMESPACE;
    let d = named(&r.deployments, ns, "driftwatch");
    hardened(d);
    let pod = pod_spec(d);
    let c = container(d, "driftwatch");
    assert_eq!(pod.service_account_name.as_deref(), Some("driftwatch"));
    assert_eq!(
        pod.automount_service_account_token,
        Some(false),
        "the service needs no API token"
    );
    let sa = named(&r.service_accounts, ns, "driftwatch");
    assert_eq!(sa.automount_service_account_token, Some(false));
    assert!(
        !r.role_bindings
            .iter()
            .flat_map(|b| b.subjects.iter().flatten())
            .any(|s| s.name == "driftwatch"),
        "the service's ServiceAccount is bound to nothing"
    );
    // Probes: liveness /healthz, readiness /readyz, startup /healthz, on the HTTP port.
    http_probe(c, c.liveness_probe.as_ref(), "liveness", "/healthz");
    http_probe(c, c.readiness_probe.as_ref(), "readiness", "/readyz");
    http_probe(c, c.startup_probe.as_ref(), "startup", "/healthz");

    // The config file: the generated ConfigMap, mounted where --config points.
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(
        args,
        ["serve", "--config", "/etc/driftwatch/driftwatch.toml"]
    );
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    let volumes = pod.volumes.clone().unwrap_or_default();
    let mount = |path: &str| {
        let m = mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}"));
        let v = volumes
            .iter()
            .find(|v| v.name == m.name)
            .unwrap_or_else(|| panic!("no volume {}", m.name));
        (m.clone(), v.clone())
    };
    let (config_mount, config_volume) = mount("/etc/driftwatch/driftwatch.toml");
    assert_eq!(config_mount.sub_path.as_deref(), Some("driftwatch.toml"));
    let config_map_name = config_volume
        .config_map
        .map(|c| c.name)
        .expect("a ConfigMap volume");
    let config_map = named(&r.config_maps, ns, &config_map_name);
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get("driftwatch.toml"))
        .expect("driftwatch.toml in the ConfigMap");
    assert_eq!(
        text,
        &read("deploy/base/driftwatch.toml"),
        "the ConfigMap is deploy/base/driftwatch.toml"
    );
    let config: toml::Table = toml::from_str(text).expect("driftwatch.toml is TOML");
    let listen: SocketAddr = config["server"]["listen"]
        .as_str()
        .expect("server.listen")
        .parse()
        .expect("server.listen is an address");
    assert_eq!(
        listen,
        SocketAddr::from(([0, 0, 0, 0], HTTP_PORT as u16)),
        "server.listen"
    );
    assert_eq!(
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("http"))
            .map(|p| p.container_port),
        Some(HTTP_PORT)
    );

    // Profiles: each model's profile lies in the mounted `driftwatch-profiles` ConfigMap.
    let (profiles_mount, profiles_volume) = mount("/etc/driftwatch/profiles");
    assert_eq!(profiles_mount.read_only, Some(true));
    assert_eq!(
        profiles_volume.config_map.map(|c| c.name).as_deref(),
        Some("driftwatch-profiles")
    );
    let models = config["models"].as_array().expect("[[models]]");
    assert!(!models.is_empty(), "at least one [[models]] entry");
    for m in models {
        let profile = m["profile"].as_str().expect("models[].profile");
        assert!(
            profile.starts_with("/etc/driftwatch/profiles/"),
            "{profile} is not in the profiles volume"
        );
    }
    assert!(
        models.iter().any(
            |m| m["profile"].as_str() == Some("/etc/driftwatch/profiles/car-loan.profile.json")
        )
    );

    // Checkpoint: [checkpoint] dir on the PersistentVolumeClaim; Recreate frees it for the next pod.
    let dir = config["checkpoint"]["dir"]
        .as_str()
        .expect("checkpoint.dir");
    let (_, checkpoint_volume) = mount(dir);
    let claim = checkpoint_volume
        .persistent_volume_claim
        .expect("the checkpoint on a PVC")
        .claim_name;
    named(&r.claims, ns, &claim);
    let strategy = d.spec.strategy.as_ref().and_then(|s| s.type_.clone());
    assert_eq!(
        strategy.as_deref(),
        Some("Recreate"),
        "a ReadWriteOnce checkpoint needs Recreate"
    );

    // The Service selects the pods and reaches the HTTP port.
    let svc = named(&r.services, ns, "driftwatch");
    let spec = svc.spec.as_ref().expect("spec");
    let selector = spec.selector.clone().expect("a selector");
    let labels = pod_labels(d);
    assert!(
        selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the Service selects the pods"
    );
    let port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("port http");
    assert_eq!(
        resolve(c, port.target_port.as_ref().expect("targetPort")),
        HTTP_PORT
    );

    // The ServiceMonitor scrapes /metrics through that port of that Service.
    let monitor = dynamic(r, "ServiceMonitor", "driftwatch");
    let match_labels = &monitor.data["spec"]["selector"]["matchLabels"];
    let service_labels = json(svc.metadata.labels.clone().unwrap_or_default());
    let match_labels = match_labels.as_object().expect("spec.selector.matchLabels");
    assert!(!match_labels.is_empty());
    assert!(
        match_labels.iter().all(|(k, v)| &service_labels[k] == v),
        "the ServiceMonitor selects the Service"
    );
    let endpoints = monitor.data["spec"]["endpoints"]
        .as_array()
        .expect("spec.endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "http");
    assert_eq!(endpoints[0]["path"], "/metrics");

    // The PrometheusRule carries exactly the groups of rules/driftwatch.rules.yaml.
    let rule = dynamic(r, "PrometheusRule", "driftwatch");
    let groups = &rule.data["spec"]["groups"];
    for group in groups.as_array().expect("spec.groups") {
        assert!(group["name"].is_string(), "a group without a name");
        for rule in group["rules"].as_array().expect("rules") {
            assert!(
                rule["alert"].is_string() && rule["expr"].is_string(),
                "an alert without a name or expr"
            );
        }
    }
    assert_eq!(
        groups,
        &rule_groups(),
        "PrometheusRule groups differ from rules/driftwatch.rules.yaml"
    );
}

/// The controller: Deployment, its ServiceAccount, and its Role and RoleBinding in the namespace
/// it acts in (`acting`), with exactly the rules of deploy/rbac/role.yaml.
fn check_controller(r: &Rendered, acting: &str) {
    let ns = SERVICE_NAMESPACE;
    let d = named(&r.deployments, ns, CONTROLLER);
    hardened(d);
    assert_eq!(d.spec.replicas, Some(2), "two replicas, one leader");
    let pod = pod_spec(d);
    let c = container(d, "controller");
    assert_eq!(pod.service_account_name.as_deref(), Some(CONTROLLER));
    named(&r.service_accounts, ns, CONTROLLER);
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("controller"));
    assert!(!args.iter().any(|a| a == "--dry-run"));
    let env = c.env.clone().unwrap_or_default();
    let field = |var: &str| {
        env.iter()
            .find(|e| e.name == var)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.clone())
    };
    assert_eq!(
        field("POD_NAME").as_deref(),
        Some("metadata.name"),
        "Lease identity from POD_NAME"
    );
    // Where it acts: --namespace, else POD_NAMESPACE (the clap `env` of --namespace).
    let flag = args
        .iter()
        .position(|a| a == "--namespace")
        .map(|i| args[i + 1].clone());
    let actual = match (flag, field("POD_NAMESPACE")) {
        (Some(flag), None) => flag,
        (None, Some(path)) if path == "metadata.namespace" => ns.to_string(),
        other => panic!("the controller's namespace must come from one source: {other:?}"),
    };
    assert_eq!(actual, acting, "the namespace the controller acts in");
    // The webhook receiver: probes and Service on 8081.
    for (which, probe) in [
        ("liveness", &c.liveness_probe),
        ("readiness", &c.readiness_probe),
    ] {
        let port = probe
            .as_ref()
            .and_then(|p| p.tcp_socket.as_ref())
            .map(|t| &t.port);
        let port = port.unwrap_or_else(|| panic!("controller: no {which} probe"));
        assert_eq!(resolve(c, port), WEBHOOK_PORT, "controller {which} probe");
    }
    let svc = named(&r.services, ns, CONTROLLER);
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    assert_eq!(port.len(), 1);
    assert_eq!(
        resolve(c, port[0].target_port.as_ref().expect("targetPort")),
        WEBHOOK_PORT
    );

    // RBAC: the least-privilege rules, unchanged, in the acting namespace, bound to the
    // controller's ServiceAccount in its own namespace. Nothing cluster-wide.
    let committed: Role = serde_yaml_ng::from_str(&read("deploy/rbac/role.yaml")).expect("a Role");
    let role = named(&r.roles, acting, CONTROLLER);
    assert_eq!(
        role.rules, committed.rules,
        "the rendered Role's rules are deploy/rbac/role.yaml's"
    );
    assert_eq!(r.roles.len(), 1, "one Role");
    let binding = named(&r.role_bindings, acting, CONTROLLER);
    assert_eq!(r.role_bindings.len(), 1, "one RoleBinding");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, CONTROLLER);
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: CONTROLLER.into(),
        namespace: Some(ns.into()),
        api_group: None,
    };
    assert_eq!(binding.subjects, Some(vec![subject]));
    assert!(
        !r.ids.iter().any(|(kind, _, _)| kind.starts_with("Cluster")),
        "no ClusterRole or ClusterRoleBinding"
    );
}

/// The NetworkPolicies admit ingress on the HTTP and webhook ports only, and the egress the two
/// processes need.
fn check_network_policies(r: &Rendered, ingress_namespaces: &[&str]) {
    let ns = SERVICE_NAMESPACE;
    for (name, container_name, port, egress_ports) in [
        ("driftwatch", "driftwatch", HTTP_PORT, &[53, 9093, 9092][..]),
        (
            CONTROLLER,
            "controller",
            WEBHOOK_PORT,
            &[53, 443, 6443, 8080, 9090][..],
        ),
    ] {
        let policy = named(&r.network_policies, ns, name);
        let d = named(&r.deployments, ns, name);
        let c = container(d, container_name);
        let spec = policy.spec.as_ref().expect("spec");
        let labels = pod_labels(d);
        let selector = spec
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        assert!(!selector.is_empty());
        assert!(
            selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{name}: selects its pods"
        );
        let types = spec.policy_types.clone().unwrap_or_default();
        assert_eq!(types, ["Ingress", "Egress"], "{name}: policyTypes");
        let ingress = spec.ingress.clone().unwrap_or_default();
        assert!(!ingress.is_empty(), "{name}: ingress rules");
        let mut admitted = BTreeSet::new();
        for rule in &ingress {
            let ports = rule.ports.clone().unwrap_or_default();
            assert!(
                !ports.is_empty(),
                "{name}: an ingress rule open on every port"
            );
            for p in ports {
                assert_eq!(
                    resolve(c, p.port.as_ref().expect("port")),
                    port,
                    "{name}: ingress port"
                );
            }
            let from = rule.from.clone().unwrap_or_default();
            assert!(
                !from.is_empty(),
                "{name}: an ingress rule open to every source"
            );
            for peer in from {
                assert!(peer.ip_block.is_none(), "{name}: no ipBlock sources");
                match peer.namespace_selector {
                    Some(sel) => {
                        let labels = sel.match_labels.unwrap_or_default();
                        admitted.insert(labels["kubernetes.io/metadata.name"].clone());
                    }
                    None => {
                        admitted.insert(ns.to_string());
                    }
                }
            }
        }
        let mut expected: BTreeSet<String> = [ns, "monitoring"].map(String::from).into();
        if name == "driftwatch" {
            expected.extend(ingress_namespaces.iter().map(|s| s.to_string()));
        }
        assert_eq!(admitted, expected, "{name}: namespaces admitted");
        let egress: BTreeSet<i32> = spec
            .egress
            .iter()
            .flatten()
            .flat_map(|e| e.ports.clone().unwrap_or_default())
            .map(|p| match p.port {
                Some(IntOrString::Int(n)) => n,
                other => panic!("{name}: egress ports are numbers, not {other:?}"),
            })
            .collect();
        assert_eq!(
            egress,
            egress_ports.iter().copied().collect(),
            "{name}: egress ports"
        );
        assert!(
            spec.egress
                .iter()
                .flatten()
                .all(|e| e.ports.as_ref().is_some_and(|p| !p.is_empty())),
            "{name}: an egress rule open on every port"
        );
    }
}

fn check_overlay(overlay: &str, acting: &str, ingress_namespaces: &[&str]) -> Rendered {
    let r = render(overlay);
    assert_eq!(
        r.ids,
        expected_ids(acting),
        "{overlay}: the rendered objects"
    );
    let namespace = named(&r.namespaces, "", SERVICE_NAMESPACE);
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    let committed: CustomResourceDefinition =
        serde_yaml_ng::from_str(&read("deploy/crd/modelmonitor.yaml")).expect("the CRD");
    let crd = &r.crds[0];
    assert_eq!(
        json(&crd.spec),
        json(&committed.spec),
        "{overlay}: the CRD is deploy/crd's"
    );
    check_service(&r);
    check_controller(&r, acting);
    check_network_policies(&r, ingress_namespaces);
    r
}

#[test]
fn single_namespace_overlay_renders_valid_objects() {
    check_overlay("single-namespace", SERVICE_NAMESPACE, &[]);
}

#[test]
fn multi_namespace_overlay_acts_in_ml_with_a_role_there() {
    let r = check_overlay("multi-namespace", "ml", &["ml"]);
    let c = container(
        named(&r.deployments, SERVICE_NAMESPACE, CONTROLLER),
        "controller",
    );
    assert_eq!(
        c.args.clone().unwrap_or_default(),
        ["controller", "--namespace", "ml"]
    );
}

#[test]
fn committed_prometheusrule_is_current() {
    let committed = read("deploy/base/prometheusrule.yaml");
    // Independent of the script: the groups are the rule file's.
    let docs = documents(&committed);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(docs[0]["kind"], "PrometheusRule");
    let stale = "deploy/base/prometheusrule.yaml is stale: regenerate it with \
                 `scripts/gen-prometheusrule.sh`";
    assert!(docs[0]["spec"]["groups"] == rule_groups(), "{stale}");
    // Byte for byte what the script writes now.
    let output = Command::new("bash")
        .args(["scripts/gen-prometheusrule.sh", "--stdout"])
        .current_dir(repo())
        .output()
        .expect("run bash scripts/gen-prometheusrule.sh");
    assert!(
        output.status.success(),
        "scripts/gen-prometheusrule.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout == committed.as_bytes(), "{stale}");
}

#[test]
fn base_rbac_copies_equal_deploy_rbac() {
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(repo().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names("deploy/base/rbac"),
        names("deploy/rbac"),
        "deploy/base/rbac holds copies of deploy/rbac"
    );
    for name in names("deploy/rbac") {
        assert!(
            read(&format!("deploy/base/rbac/{name}")) == read(&format!("deploy/rbac/{name}")),
            "deploy/base/rbac/{name} differs from deploy/rbac/{name}: copy it again \
             (`cp deploy/rbac/*.yaml deploy/base/rbac/`)"
        );
    }
}
