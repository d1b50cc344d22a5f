//! Fuzzing of every collector decoder (issue 19, item 9): arbitrary bytes, and valid messages
//! mutated by byte flips, insertions, deletions and truncation, through the JSON event decoders
//! (both paths), the OIP v2 JSON and protobuf decoders and their pairing into events, the
//! CloudEvents decoder, and the label-event decoder. No input may panic, and each decoder's own invariants must hold.
//!
//! Cases per property: `DRIFTWATCH_FUZZ_CASES` (default 4,000), so CI runs a bounded budget; a
//! longer run is `DRIFTWATCH_FUZZ_CASES=1000000 cargo test -p driftwatch-collector --lib fuzz`.
//! A failure is shrunk by proptest and saved under `proptest-regressions/`; keep the smallest
//! input as a regression test beside the decoder.

use proptest::prelude::*;
use prost::Message as _;
use test_support::fuzz::mutate;

use super::cloudevents;
use super::json::{decode_each, decode_events};
use super::label::decode_labels;
use super::oip::{MAX_ROWS_PER_MESSAGE, OipMapping, PairTiming, assemble, decode_message};
use super::{DecodeError, Encoding};

fn cases() -> u32 {
    test_support::fuzz::cases(4_000)
}

const EVENT_SEEDS: [&str; 4] = [
    r#"{"timestamp": "2026-11-29T17:00:00.123Z", "model": "car-loan", "model_version": "v1.3.0", "variant": "canary", "request_id": "9f1c", "features": {"car_value": 39811.0, "salary_range": "40K - 60K \u20ac", "repaid_loan_on_prev_car": false}, "prediction": 1, "confidence": 0.99, "latency_ms": 41.2}"#,
    "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"x\": 1}}\n{\"timestamp\": 2, \"model\": \"m\", \"features\": {\"x\": \"a\\u00e9\", \"y\": null}}\n",
    r#"[{"timestamp": 1, "model": "m", "features": {}}, {"model": "m"}, {"timestamp": -5, "model": "n", "features": {"x": 1e308}}]"#,
    r#"{"timestamp": 9223372036854775807, "model": "m", "features": {"a": [1, 2], "b": {"c": 1}}, "prediction": [0.2, 0.8]}"#,
];

const OIP_REQUEST: &str = r#"{"id": "req-1", "inputs": [
    {"name": "car_value", "shape": [2], "datatype": "FP64", "data": [39811.0, 12679.0]},
    {"name": "salary_range", "shape": [2, 1], "datatype": "BYTES", "data": [["40K - 60K"], ["0 - 20K"]]},
    {"name": "dense", "shape": [2, 2], "datatype": "FP32", "data": [[0.5, 19.0], [0.7, 7.0]]}
]}"#;

const OIP_RESPONSE: &str = r#"{"id": "req-1", "model_name": "car-loan", "model_version": "v3", "outputs": [
    {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.01, 0.99, 0.93, 0.07]}
]}"#;

const LABEL_SEEDS: [&str; 3] = [
    r#"{"timestamp": "2026-11-30T09:12:00Z", "model": "car-loan", "request_id": "9f1c", "label": 1}"#,
    "{\"model\": \"m\", \"request_id\": \"a\", \"label\": \"approved\"}\n\n{\"model\": \"m\", \"request_id\": \"b\", \"label\": true, \"timestamp\": 1700000000000}\n",
    r#"[{"model": "m", "request_id": "r1", "label": 0.5}, {"model": "m", "label": null}, {"model": "", "request_id": "", "label": [1]}]"#,
];

/// The label decoder on `payload`: no panic; every label it accepts passes validation (a model
/// and request id within bounds, a label that is present); every bad label names a line and a
/// bounded reason.
fn check_labels(payload: &[u8]) -> Result<(), TestCaseError> {
    match decode_labels(payload) {
        Ok(d) => {
            for l in &d.labels {
                prop_assert!(l.validate().is_ok(), "{:?}", l);
                prop_assert!(!l.request_id.is_empty() && !l.model.is_empty());
            }
            for b in &d.bad {
                prop_assert!(b.line >= 1);
                prop_assert!(bounded_reason(&b.error), "{:?}", b.error);
                let prefix = format!("line {}: ", b.line);
                prop_assert!(b.error.message.starts_with(&prefix), "{:?}", b.error);
            }
        }
        Err(e) => prop_assert!(bounded_reason(&e), "{:?}", e),
    }
    Ok(())
}

fn proto_seeds() -> [Vec<u8>; 2] {
    let (request, response) = super::oip::tests::seldon_pair();
    [request.encode_to_vec(), response.encode_to_vec()]
}

/// Every reason a decoder gives is a bounded label: non-empty lower-case ASCII with underscores.
fn bounded_reason(e: &DecodeError) -> bool {
    !e.reason.as_str().is_empty()
        && e.reason
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn edits() -> impl Strategy<Value = Vec<test_support::fuzz::Edit>> {
    test_support::fuzz::edits(0)
}

/// The JSON event decoders on `payload`: no panic, the fast path gives exactly the exact
/// decoder's events and bad lines, every bad event names a line and a bounded reason.
fn check_json_events(payload: &[u8]) -> Result<(), TestCaseError> {
    let exact = decode_events(payload);
    let mut fast = Vec::new();
    let fast_bad = decode_each(payload, |line, e| fast.push((line, e.into_owned())));
    match (exact, fast_bad) {
        (Ok(exact), Ok(bad)) => {
            let events: Vec<_> = fast.into_iter().map(|(_, e)| e).collect();
            prop_assert_eq!(&events, &exact.events);
            prop_assert_eq!(&bad, &exact.bad);
            for b in &bad {
                prop_assert!(b.line >= 1);
                prop_assert!(bounded_reason(&b.error), "{:?}", b.error);
            }
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(&a, &b);
            prop_assert!(bounded_reason(&a));
        }
        (a, b) => prop_assert!(
            false,
            "decoders disagree: {:?} vs {:?}",
            a.map(|_| ()),
            b.map(|_| ())
        ),
    }
    Ok(())
}

/// OIP v2 decoding and pairing: no panic, bounded reasons, never more events than a message may
/// carry.
fn check_oip(request: &[u8], response: &[u8], encoding: Encoding) -> Result<(), TestCaseError> {
    let req = decode_message(request, encoding, false);
    let resp = decode_message(response, encoding, true);
    for r in [&req, &resp] {
        if let Err(e) = r {
            prop_assert!(bounded_reason(e), "{:?}", e);
        }
    }
    if let (Ok(req), Ok(resp)) = (req, resp) {
        match assemble(
            &req,
            &resp,
            &OipMapping::default(),
            PairTiming::default(),
            0,
        ) {
            Ok(events) => prop_assert!(events.len() as u64 <= MAX_ROWS_PER_MESSAGE),
            Err(e) => prop_assert!(bounded_reason(&e), "{:?}", e),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn json_events_from_arbitrary_bytes(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        check_json_events(&payload)?;
    }

    #[test]
    fn json_events_from_mutated_events(seed in 0..EVENT_SEEDS.len(), edits in edits()) {
        check_json_events(&mutate(EVENT_SEEDS[seed].as_bytes(), &edits))?;
    }

    #[test]
    fn labels_from_arbitrary_bytes(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        check_labels(&payload)?;
    }

    #[test]
    fn labels_from_mutated_label_events(seed in 0..LABEL_SEEDS.len(), edits in edits()) {
        check_labels(&mutate(LABEL_SEEDS[seed].as_bytes(), &edits))?;
    }

    #[test]
    fn oip_json_pairs_from_mutated_messages(
        request in edits(),
        response in edits(),
        shape in prop_oneof![any::<i64>(), -2i64..4],
        out_shape in prop::sample::select(vec!["[2, 2]", "[2, 0]", "[0, 2]", "[2]", "[]", "[2, 1, 2]"]),
        datatype in prop::sample::select(vec!["FP64", "BYTES", "BOOL", "INT64"]),
    ) {
        let mutated = mutate(OIP_REQUEST.replace("[2, 2]", &format!("[2, {shape}]")).as_bytes(), &request);
        // The response's shape and type vary too, against a request that decodes (review found
        // `[1, 0]` BYTES outputs panicking, which mutated requests hardly ever reached).
        let response_seed = OIP_RESPONSE.replace("[2, 2]", out_shape).replace("FP64", datatype);
        let mutated_response = mutate(response_seed.as_bytes(), &response);
        check_oip(&mutated, &mutated_response, Encoding::OipV2Json)?;
        check_oip(OIP_REQUEST.as_bytes(), &mutated_response, Encoding::OipV2Json)?;
        let empty = format!(
            r#"{{"model_name": "m", "outputs": [{{"name": "p", "shape": {out_shape}, "datatype": "{datatype}", "data": []}}]}}"#
        );
        check_oip(OIP_REQUEST.as_bytes(), empty.as_bytes(), Encoding::OipV2Json)?;
    }

    #[test]
    fn oip_protobuf_pairs_from_mutated_and_arbitrary_frames(
        request in edits(),
        response in edits(),
        noise in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let [req, resp] = proto_seeds();
        check_oip(&mutate(&req, &request), &mutate(&resp, &response), Encoding::OipV2Protobuf)?;
        check_oip(&noise, &resp, Encoding::OipV2Protobuf)?;
    }

    #[test]
    fn cloudevents_from_mutated_bodies_and_headers(
        body in edits(),
        id in "[ -~]{0,12}",
        kind in prop::sample::select(vec![
            "org.kubeflow.serving.inference.request",
            "org.kubeflow.serving.inference.response",
            "",
            "something.else",
        ]),
        time in "[ -~]{0,30}",
    ) {
        let bodies = [OIP_REQUEST, OIP_RESPONSE, r#"{"instances": [[1, 2], [3, 4]]}"#, r#"{"predictions": [[0.2, 0.8], [0.9, 0.1]]}"#];
        for seed in bodies {
            let body = mutate(seed.as_bytes(), &body);
            let headers = [("ce-id", id.as_str()), ("ce-type", kind), ("ce-time", time.as_str()), ("ce-specversion", "1.0")];
            match cloudevents::decode(headers, &body) {
                Ok(half) => {
                    let other = half.clone();
                    if let Err(e) = cloudevents::assemble(&half, &other, &OipMapping::default(), 0) {
                        prop_assert!(bounded_reason(&e), "{:?}", e);
                    }
                }
                Err(e) => prop_assert!(bounded_reason(&e), "{:?}", e),
            }
        }
    }
}
