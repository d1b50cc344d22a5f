//! Checks on `deploy/`: the committed CRD matches `crdgen()`, and the RBAC manifests grant
//! exactly the least privilege the controller needs.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("read deploy/{path}: {e}"))
}

#[test]
fn committed_crd_matches_crdgen() {
    let generated = controller::crdgen().expect("crdgen");
    let path = deploy("crd/modelmonitor.yaml");
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).expect("write CRD");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "deploy/crd/modelmonitor.yaml is stale: regenerate it with \
         `UPDATE_CRD=1 cargo test -p driftwatch-controller --test deploy` (or \
         `driftwatch crdgen > deploy/crd/modelmonitor.yaml`)"
    );
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&committed).expect("a valid CRD");
    assert_eq!(crd.spec.group, "driftwatch.io");
    assert_eq!(crd.spec.names.kind, "ModelMonitor");
    assert_eq!(crd.spec.names.short_names, Some(vec!["mm".to_string()]));
}

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        resource_names: (!names.is_empty()).then(|| owned(names)),
        verbs: owned(verbs),
        non_resource_urls: None,
    }
}

#[test]
fn role_grants_exactly_the_least_privilege() {
    let role: Role = serde_yaml_ng::from_str(&read("rbac/role.yaml")).expect("a valid Role");
    assert_eq!(role.metadata.name.as_deref(), Some("driftwatch-controller"));
    assert_eq!(role.metadata.namespace.as_deref(), Some("driftwatch"));
    let expected = vec![
        rule(
            &["driftwatch.io"],
            &["modelmonitors"],
            &[],
            &["get", "list", "watch"],
        ),
        rule(
            &["driftwatch.io"],
            &["modelmonitors/status"],
            &[],
            &["get", "patch"],
        ),
        rule(
            &["batch"],
            &["jobs"],
            &[],
            &["create", "get", "list", "watch", "delete"],
        ),
        rule(
            &["machinelearning.seldon.io"],
            &["seldondeployments"],
            &[],
            &["get", "patch"],
        ),
        rule(
            &["serving.kserve.io"],
            &["inferenceservices"],
            &[],
            &["get", "patch"],
        ),
        rule(&["coordination.k8s.io"], &["leases"], &[], &["create"]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["driftwatch-controller"],
            &["get", "update"],
        ),
        rule(&["events.k8s.io"], &["events"], &[], &["create", "patch"]),
    ];
    assert_eq!(role.rules, Some(expected));
    // No wildcard anywhere.
    let text = read("rbac/role.yaml");
    assert!(
        !text.contains("\"*\""),
        "no wildcard groups, resources or verbs"
    );
}

#[test]
fn binding_ties_the_service_account_to_the_role_and_no_cluster_role_exists() {
    let sa: ServiceAccount =
        serde_yaml_ng::from_str(&read("rbac/service_account.yaml")).expect("a ServiceAccount");
    let binding: RoleBinding =
        serde_yaml_ng::from_str(&read("rbac/role_binding.yaml")).expect("a RoleBinding");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, "driftwatch-controller");
    let subjects = binding.subjects.expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, sa.metadata.name.expect("sa name"));
    assert_eq!(subjects[0].namespace, sa.metadata.namespace);
    // Namespaced watches only: nothing in deploy/rbac may be cluster-scoped.
    for entry in std::fs::read_dir(deploy("rbac")).expect("rbac dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).expect("yaml");
            let kind = value
                .get("kind")
                .and_then(serde_yaml_ng::Value::as_str)
                .unwrap_or_default();
            assert!(
                ["ServiceAccount", "Role", "RoleBinding"].contains(&kind),
                "{}: unexpected kind {kind} (no cluster-scoped RBAC)",
                path.display()
            );
        }
    }
}
