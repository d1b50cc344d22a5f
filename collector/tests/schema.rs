//! The published JSON Schemas of the prediction event (`schemas/prediction-event.schema.json`) and
//! of the label event (`schemas/label-event.schema.json`) must be the ones generated from the
//! Rust types. Regenerate with
//! `UPDATE_SCHEMAS=1 cargo test --workspace --test schema`.

use collector::PredictionEvent;

#[test]
fn published_event_schema_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/prediction-event.schema.json"
    );
    let generated = PredictionEvent::json_schema();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        published == generated,
        "schemas/prediction-event.schema.json is stale; regenerate with UPDATE_SCHEMAS=1 cargo test --workspace --test schema"
    );
    // The schema names the required fields.
    let schema: serde_json::Value = serde_json::from_str(&published).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["timestamp", "model", "features"]);
}

#[test]
fn published_label_schema_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/label-event.schema.json"
    );
    let generated = collector::decode::label::LabelEvent::json_schema();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        published == generated,
        "schemas/label-event.schema.json is stale; regenerate with UPDATE_SCHEMAS=1 cargo test --workspace --test schema"
    );
    let schema: serde_json::Value = serde_json::from_str(&published).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["model", "request_id", "label"]);
}
