//! Open Inference Protocol v2: requests and responses (protobuf or JSON) to prediction events.
//!
//! A request carries the features as input tensors, a response the prediction as output tensors;
//! the two are paired by request id ([`super::pairing`]) and assembled into one event per row of
//! the batch dimension. Shapes follow the protocol: `[N]` or `[N, 1]` is one scalar per row named
//! after the tensor; `[N, F]` is `F` features per row, named by [`OipMapping::feature_names`] (or
//! `name_0 .. name_{F-1}`).

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::decode::proto::{InferTensor, ModelInferRequest, ModelInferResponse};
use crate::decode::{DecodeError, DecodeReason, Encoding, looks_like_json};
use crate::event::{EventTime, FeatureValue, PredictionEvent, Variant};

/// How OIP v2 tensors map to an event's features and outputs (per topic or endpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OipMapping {
    /// Model name for the events; default: the response's `model_name`, else the request's.
    pub model: Option<String>,
    /// Deployment variant of the events (default `stable`).
    pub variant: Variant,
    /// Feature names of a multi-column input tensor, by input name, in column order.
    pub feature_names: BTreeMap<String, Vec<String>>,
    /// The output holding the prediction; default: the first output. A `[N, C]` output is read as
    /// class probabilities: the prediction is the arg-max class index and the confidence its
    /// probability.
    pub prediction_output: Option<String>,
    /// The output holding the confidence (`[N]`, or `[N, C]` whose row maximum is taken).
    pub confidence_output: Option<String>,
}

/// Values of one tensor, flattened in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// Numeric datatypes (`INT*`, `UINT*`, `FP*`).
    Numbers(Vec<f64>),
    /// `BOOL`.
    Bools(Vec<bool>),
    /// `BYTES` (as UTF-8 text).
    Text(Vec<String>),
}

impl TensorData {
    fn len(&self) -> usize {
        match self {
            TensorData::Numbers(v) => v.len(),
            TensorData::Bools(v) => v.len(),
            TensorData::Text(v) => v.len(),
        }
    }

    fn value(&self, i: usize) -> FeatureValue {
        match self {
            TensorData::Numbers(v) => FeatureValue::Number(v[i]),
            TensorData::Bools(v) => FeatureValue::Bool(v[i]),
            TensorData::Text(v) => FeatureValue::Text(v[i].clone()),
        }
    }
}

/// A decoded tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Tensor name.
    pub name: String,
    /// Shape; the first dimension is the batch.
    pub shape: Vec<i64>,
    /// Values.
    pub data: TensorData,
}

/// A decoded request or response.
#[derive(Debug, Clone, PartialEq)]
pub struct OipMessage {
    /// Request id (may be empty; the source then pairs by header or key).
    pub id: String,
    /// `model_name`.
    pub model_name: String,
    /// `model_version`.
    pub model_version: String,
    /// Input tensors (request) or output tensors (response).
    pub tensors: Vec<Tensor>,
}

impl OipMessage {
    /// An estimate of the memory the decoded message holds, in bytes: its strings and tensor
    /// values as stored (8 bytes a number, 1 a bool, each text with its `String` header). The
    /// pairers weigh waiting halves by it, since a value can take more memory decoded than on
    /// the wire (`0,` is 2 bytes of JSON and 8 as an `f64`).
    pub fn heap_bytes(&self) -> usize {
        let header = std::mem::size_of::<String>();
        let tensors: usize = self
            .tensors
            .iter()
            .map(|t| {
                let data = match &t.data {
                    TensorData::Numbers(v) => v.len() * 8,
                    TensorData::Bools(v) => v.len(),
                    TensorData::Text(v) => v.iter().map(|s| s.len() + header).sum(),
                };
                std::mem::size_of::<Tensor>() + t.name.len() + t.shape.len() * 8 + data
            })
            .sum();
        self.id.len() + self.model_name.len() + self.model_version.len() + tensors
    }
}

/// Decodes a `ModelInferRequest` (inputs) or `ModelInferResponse` (outputs).
///
/// # Errors
/// `wrong_encoding` when a JSON payload arrives on a protobuf topic or the reverse (edge case E23),
/// `invalid_json` / `invalid_field` for malformed messages, including a datatype that does not
/// match the data (`FP32` holding strings) or a shape that does not match the element count.
pub fn decode_message(
    payload: &[u8],
    encoding: Encoding,
    response: bool,
) -> Result<OipMessage, DecodeError> {
    match encoding {
        Encoding::OipV2Protobuf => {
            if looks_like_json(payload) && std::str::from_utf8(payload).is_ok() {
                return Err(DecodeError::new(
                    DecodeReason::WrongEncoding,
                    "the message is JSON text but this topic expects OIP v2 protobuf",
                ));
            }
            decode_protobuf(payload, response)
        }
        Encoding::OipV2Json | Encoding::Json => {
            if !looks_like_json(payload) {
                return Err(DecodeError::new(
                    DecodeReason::WrongEncoding,
                    "the message is not JSON text but this topic expects OIP v2 JSON",
                ));
            }
            decode_json(payload, response)
        }
    }
}

fn decode_protobuf(payload: &[u8], response: bool) -> Result<OipMessage, DecodeError> {
    let bad = |e: prost::DecodeError| {
        DecodeError::new(
            DecodeReason::WrongEncoding,
            format!("not an OIP v2 protobuf message: {e}"),
        )
    };
    let (id, model_name, model_version, tensors, raw) = if response {
        let m = ModelInferResponse::decode(payload).map_err(bad)?;
        (
            m.id,
            m.model_name,
            m.model_version,
            m.outputs,
            m.raw_output_contents,
        )
    } else {
        let m = ModelInferRequest::decode(payload).map_err(bad)?;
        (
            m.id,
            m.model_name,
            m.model_version,
            m.inputs,
            m.raw_input_contents,
        )
    };
    if tensors.is_empty() {
        return Err(DecodeError::new(
            DecodeReason::MissingField,
            format!(
                "the {} has no tensors",
                if response { "response" } else { "request" }
            ),
        ));
    }
    let mut out = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.into_iter().enumerate() {
        let data = match raw.get(i) {
            Some(bytes) if !raw.is_empty() => raw_tensor(&t.name, &t.datatype, bytes)?,
            _ => typed_contents(&t)?,
        };
        out.push(checked(Tensor {
            name: t.name,
            shape: t.shape,
            data,
        })?);
    }
    Ok(OipMessage {
        id,
        model_name,
        model_version,
        tensors: out,
    })
}

fn typed_contents(t: &InferTensor) -> Result<TensorData, DecodeError> {
    let c = t.contents.clone().unwrap_or_default();
    let name = &t.name;
    let data = match t.datatype.as_str() {
        "BOOL" => TensorData::Bools(c.bool_contents),
        "INT8" | "INT16" | "INT32" => {
            TensorData::Numbers(c.int_contents.iter().map(|&v| f64::from(v)).collect())
        }
        "INT64" => TensorData::Numbers(c.int64_contents.iter().map(|&v| v as f64).collect()),
        "UINT8" | "UINT16" | "UINT32" => {
            TensorData::Numbers(c.uint_contents.iter().map(|&v| f64::from(v)).collect())
        }
        "UINT64" => TensorData::Numbers(c.uint64_contents.iter().map(|&v| v as f64).collect()),
        "FP16" | "FP32" => {
            TensorData::Numbers(c.fp32_contents.iter().map(|&v| f64::from(v)).collect())
        }
        "FP64" => TensorData::Numbers(c.fp64_contents),
        "BYTES" => TensorData::Text(
            c.bytes_contents
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect(),
        ),
        other => return Err(unknown_datatype(name, other)),
    };
    Ok(data)
}

fn unknown_datatype(name: &str, datatype: &str) -> DecodeError {
    DecodeError::new(
        DecodeReason::InvalidField,
        format!("tensor `{name}`: unknown datatype `{datatype}`"),
    )
}

/// Decodes `raw_*_contents` (little-endian, BYTES as 4-byte length prefixes).
fn raw_tensor(name: &str, datatype: &str, bytes: &[u8]) -> Result<TensorData, DecodeError> {
    fn chunks<const N: usize>(name: &str, bytes: &[u8]) -> Result<Vec<[u8; N]>, DecodeError> {
        if !bytes.len().is_multiple_of(N) {
            return Err(DecodeError::new(
                DecodeReason::InvalidField,
                format!(
                    "tensor `{name}`: raw contents of {} bytes are not a multiple of {N}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes
            .chunks_exact(N)
            .map(|c| c.try_into().unwrap_or([0; N]))
            .collect())
    }
    let nums = |v: Vec<f64>| Ok(TensorData::Numbers(v));
    match datatype {
        "BOOL" => Ok(TensorData::Bools(bytes.iter().map(|&b| b != 0).collect())),
        "INT8" => nums(bytes.iter().map(|&b| f64::from(b as i8)).collect()),
        "UINT8" => nums(bytes.iter().map(|&b| f64::from(b)).collect()),
        "INT16" => nums(
            chunks::<2>(name, bytes)?
                .into_iter()
                .map(|c| f64::from(i16::from_le_bytes(c)))
                .collect(),
        ),
        "UINT16" => nums(
            chunks::<2>(name, bytes)?
                .into_iter()
                .map(|c| f64::from(u16::from_le_bytes(c)))
                .collect(),
        ),
        "INT32" => nums(
            chunks::<4>(name, bytes)?
                .into_iter()
                .map(|c| f64::from(i32::from_le_bytes(c)))
                .collect(),
        ),
        "UINT32" => nums(
            chunks::<4>(name, bytes)?
                .into_iter()
                .map(|c| f64::from(u32::from_le_bytes(c)))
                .collect(),
        ),
        "INT64" => nums(
            chunks::<8>(name, bytes)?
                .into_iter()
                .map(|c| i64::from_le_bytes(c) as f64)
                .collect(),
        ),
        "UINT64" => nums(
            chunks::<8>(name, bytes)?
                .into_iter()
                .map(|c| u64::from_le_bytes(c) as f64)
                .collect(),
        ),
        "FP32" => nums(
            chunks::<4>(name, bytes)?
                .into_iter()
                .map(|c| f64::from(f32::from_le_bytes(c)))
                .collect(),
        ),
        "FP64" => nums(
            chunks::<8>(name, bytes)?
                .into_iter()
                .map(f64::from_le_bytes)
                .collect(),
        ),
        "BYTES" => {
            let mut out = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(DecodeError::new(
                        DecodeReason::InvalidField,
                        format!("tensor `{name}`: truncated BYTES element"),
                    ));
                }
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let Some(item) = rest.get(4..4 + len) else {
                    return Err(DecodeError::new(
                        DecodeReason::InvalidField,
                        format!("tensor `{name}`: truncated BYTES element"),
                    ));
                };
                out.push(String::from_utf8_lossy(item).into_owned());
                rest = &rest[4 + len..];
            }
            Ok(TensorData::Text(out))
        }
        other => Err(unknown_datatype(name, other)),
    }
}

#[derive(Deserialize)]
struct JsonMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model_name: String,
    #[serde(default)]
    model_version: String,
    #[serde(default)]
    inputs: Vec<JsonTensor>,
    #[serde(default)]
    outputs: Vec<JsonTensor>,
}

#[derive(Deserialize)]
struct JsonTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: serde_json::Value,
}

fn decode_json(payload: &[u8], response: bool) -> Result<OipMessage, DecodeError> {
    let m: JsonMessage = serde_json::from_slice(payload).map_err(|e| {
        DecodeError::new(super::json_reason(&e), format!("invalid OIP v2 JSON: {e}"))
    })?;
    let tensors = if response { m.outputs } else { m.inputs };
    if tensors.is_empty() {
        return Err(DecodeError::new(
            DecodeReason::MissingField,
            format!(
                "the {} has no `{}`",
                if response { "response" } else { "request" },
                if response { "outputs" } else { "inputs" }
            ),
        ));
    }
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let mut flat = Vec::new();
        flatten(&t.data, &mut flat);
        let data = json_data(&t.name, &t.datatype, &flat)?;
        out.push(checked(Tensor {
            name: t.name,
            shape: t.shape,
            data,
        })?);
    }
    Ok(OipMessage {
        id: m.id,
        model_name: m.model_name,
        model_version: m.model_version,
        tensors: out,
    })
}

fn flatten<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn json_data(
    name: &str,
    datatype: &str,
    values: &[&serde_json::Value],
) -> Result<TensorData, DecodeError> {
    let mismatch = |v: &serde_json::Value| {
        DecodeError::new(
            DecodeReason::InvalidField,
            format!("tensor `{name}`: datatype {datatype} but the data holds {v}"),
        )
    };
    match datatype {
        "BOOL" => values
            .iter()
            .map(|v| v.as_bool().ok_or_else(|| mismatch(v)))
            .collect::<Result<_, _>>()
            .map(TensorData::Bools),
        "BYTES" => values
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| mismatch(v)))
            .collect::<Result<_, _>>()
            .map(TensorData::Text),
        "INT8" | "INT16" | "INT32" | "INT64" | "UINT8" | "UINT16" | "UINT32" | "UINT64"
        | "FP16" | "FP32" | "FP64" => values
            .iter()
            .map(|v| v.as_f64().ok_or_else(|| mismatch(v)))
            .collect::<Result<_, _>>()
            .map(TensorData::Numbers),
        other => Err(unknown_datatype(name, other)),
    }
}

/// Most rows (the shape's first dimension) one OIP request or response may carry. A decoded pair
/// becomes one event per row, so this bounds what one message can make the service allocate,
/// whatever its shape claims (issue 19, finding 1: a shape `[4294967296, 0]` with no data asked
/// for 2^32 events).
pub const MAX_ROWS_PER_MESSAGE: u64 = 65_536;

/// Checks a tensor's shape before anything is allocated from it: no negative dimension, at most
/// [`MAX_ROWS_PER_MESSAGE`] rows, a product of the dimensions that does not overflow (computed
/// with checked arithmetic) and equals the element count.
fn checked(t: Tensor) -> Result<Tensor, DecodeError> {
    let invalid = |message: String| Err(DecodeError::new(DecodeReason::InvalidField, message));
    if t.shape.iter().any(|d| *d < 0) {
        return invalid(format!(
            "tensor `{}`: negative dimension in shape {:?}",
            t.name, t.shape
        ));
    }
    if let Some(&rows) = t.shape.first()
        && rows.unsigned_abs() > MAX_ROWS_PER_MESSAGE
    {
        return invalid(format!(
            "tensor `{}`: shape {:?} has {rows} rows, more than the {MAX_ROWS_PER_MESSAGE} one message may carry",
            t.name, t.shape
        ));
    }
    let expected = t
        .shape
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(d.unsigned_abs()));
    match expected {
        None => invalid(format!(
            "tensor `{}`: shape {:?} has more elements than a 64-bit count holds",
            t.name, t.shape
        )),
        Some(n) if n != t.data.len() as u64 => invalid(format!(
            "tensor `{}`: shape {:?} needs {n} values but the data has {}",
            t.name,
            t.shape,
            t.data.len()
        )),
        Some(_) => Ok(t),
    }
}

/// Rows and columns of a tensor: `[]` is one scalar, `[N]` N rows of one, `[N, F, ...]` N rows of
/// the remaining product.
///
/// Shapes are [`checked`] when decoded: dimensions are non-negative and their product fits, so
/// these conversions do not wrap.
fn rows_cols(t: &Tensor) -> (usize, usize) {
    let dim = |d: &i64| usize::try_from(*d).unwrap_or(usize::MAX);
    match t.shape.as_slice() {
        [] => (1, 1),
        [n] => (dim(n), 1),
        [n, rest @ ..] => (dim(n), rest.iter().map(dim).fold(1, usize::saturating_mul)),
    }
}

/// Timing of a pair, from the source (Kafka message timestamps, CloudEvents `ce-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairTiming {
    /// When the request was produced (epoch milliseconds), if known.
    pub request_ms: Option<i64>,
    /// When the response was produced (epoch milliseconds), if known.
    pub response_ms: Option<i64>,
}

/// Assembles a request and its response into one event per row.
///
/// The event time is the response's time (else the request's, else `fallback_ms`), the latency
/// the difference between the two when both are known.
///
/// # Errors
/// `invalid_field` when tensors disagree on the batch size, a feature-name list does not match
/// the column count, or the named outputs are missing; `missing_field` without a model name.
pub fn assemble(
    request: &OipMessage,
    response: &OipMessage,
    mapping: &OipMapping,
    timing: PairTiming,
    fallback_ms: i64,
) -> Result<Vec<PredictionEvent>, DecodeError> {
    let model = mapping
        .model
        .clone()
        .or_else(|| Some(response.model_name.clone()).filter(|s| !s.is_empty()))
        .or_else(|| Some(request.model_name.clone()).filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            DecodeError::new(
                DecodeReason::MissingField,
                "no model name in the request, the response or the mapping",
            )
        })?;
    let version = Some(response.model_version.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| Some(request.model_version.clone()).filter(|s| !s.is_empty()));
    let Some(first) = request.tensors.first() else {
        return Err(DecodeError::new(
            DecodeReason::InvalidField,
            "the request has no input tensor",
        ));
    };
    let rows = rows_cols(first).0;
    for t in request.tensors.iter().chain(&response.tensors) {
        if rows_cols(t).0 != rows {
            return Err(DecodeError::new(
                DecodeReason::InvalidField,
                format!(
                    "tensor `{}` has {} rows but `{}` has {rows}",
                    t.name,
                    rows_cols(t).0,
                    first.name
                ),
            ));
        }
    }
    if rows == 0 {
        // No row, no event. (A zero-row tensor may claim any row size: its element count is 0,
        // so nothing below may be sized from its columns.)
        return Ok(Vec::new());
    }
    // With rows, every tensor needs values in each: a `[1, 0]` output has none to read.
    if let Some(t) = request
        .tensors
        .iter()
        .chain(&response.tensors)
        .find(|t| rows_cols(t).1 == 0)
    {
        return Err(DecodeError::new(
            DecodeReason::InvalidField,
            format!(
                "tensor `{}` has shape {:?}: {rows} rows of no values",
                t.name, t.shape
            ),
        ));
    }
    let find_output = |name: &Option<String>, what: &str| -> Result<Option<&Tensor>, DecodeError> {
        match name {
            Some(n) => response
                .tensors
                .iter()
                .find(|t| &t.name == n)
                .map(Some)
                .ok_or_else(|| {
                    DecodeError::new(
                        DecodeReason::InvalidField,
                        format!("the response has no output `{n}` ({what})"),
                    )
                }),
            None => Ok(None),
        }
    };
    let prediction =
        find_output(&mapping.prediction_output, "prediction_output")?.or(response.tensors.first());
    let confidence = find_output(&mapping.confidence_output, "confidence_output")?;

    // Feature columns: (name, tensor, column).
    let mut columns: Vec<(String, &Tensor, usize)> = Vec::new();
    for t in &request.tensors {
        let cols = rows_cols(t).1;
        match (cols, mapping.feature_names.get(&t.name)) {
            (_, Some(names)) if names.len() != cols => {
                return Err(DecodeError::new(
                    DecodeReason::InvalidField,
                    format!(
                        "input `{}` has {cols} columns but feature_names lists {}",
                        t.name,
                        names.len()
                    ),
                ));
            }
            (_, Some(names)) => {
                columns.extend(names.iter().enumerate().map(|(j, n)| (n.clone(), t, j)))
            }
            (1, None) => columns.push((t.name.clone(), t, 0)),
            (_, None) => columns.extend((0..cols).map(|j| (format!("{}_{j}", t.name), t, j))),
        }
    }
    let timestamp = timing
        .response_ms
        .or(timing.request_ms)
        .unwrap_or(fallback_ms);
    let latency_ms = match (timing.request_ms, timing.response_ms) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64),
        _ => None,
    };
    let id = if response.id.is_empty() {
        request.id.clone()
    } else {
        response.id.clone()
    };
    let mut events = Vec::with_capacity(rows);
    for row in 0..rows {
        let features = columns
            .iter()
            .map(|(name, t, j)| (name.clone(), t.data.value(row * rows_cols(t).1 + j)))
            .collect();
        let (pred, mut conf) = match prediction {
            Some(t) => row_output(t, row),
            None => (None, None),
        };
        if let Some(c) = confidence {
            conf = match row_output(c, row) {
                (_, Some(max)) => Some(max),
                (Some(FeatureValue::Number(v)), None) => Some(v),
                _ => None,
            };
        }
        let event = PredictionEvent {
            timestamp: EventTime(timestamp),
            model: model.clone(),
            model_version: version.clone(),
            variant: mapping.variant,
            request_id: Some(if rows == 1 {
                id.clone()
            } else {
                format!("{id}:{row}")
            })
            .filter(|s| !s.is_empty() && s != ":0"),
            features,
            prediction: pred,
            confidence: conf,
            latency_ms,
        };
        event
            .validate()
            .map_err(|e| DecodeError::new(e.reason(), e.to_string()))?;
        events.push(event);
    }
    Ok(events)
}

/// The prediction of one row: a scalar as is; a row of class probabilities as (arg-max, max).
fn row_output(t: &Tensor, row: usize) -> (Option<FeatureValue>, Option<f64>) {
    let (_, cols) = rows_cols(t);
    if cols == 1 {
        return (Some(t.data.value(row)), None);
    }
    match &t.data {
        TensorData::Numbers(v) => {
            let slice = &v[row * cols..(row + 1) * cols];
            let (arg, max) =
                slice
                    .iter()
                    .enumerate()
                    .fold((0usize, f64::NEG_INFINITY), |(ai, am), (i, &x)| {
                        if x > am { (i, x) } else { (ai, am) }
                    });
            (
                Some(FeatureValue::Number(arg as f64)),
                // Not filtered: a largest "probability" outside [0, 1] fails validation
                // with its value (issue 19, finding 8: it was silently dropped).
                Some(max),
            )
        }
        other => (Some(other.value(row * cols)), None),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::proto::InferTensorContents;

    /// A protobuf request and response as Seldon Core v2 writes them (iris: 4 FP32 features, an
    /// INT64 class in the raw output contents); also the fuzz harness's protobuf seeds.
    pub(crate) fn seldon_pair() -> (ModelInferRequest, ModelInferResponse) {
        let req = ModelInferRequest {
            model_name: "iris".into(),
            model_version: String::new(),
            id: "abc".into(),
            inputs: vec![InferTensor {
                name: "predict".into(),
                datatype: "FP32".into(),
                shape: vec![1, 4],
                contents: Some(InferTensorContents {
                    fp32_contents: vec![1.0, 2.0, 3.0, 4.0],
                    ..Default::default()
                }),
            }],
            raw_input_contents: vec![],
        };
        let resp = ModelInferResponse {
            model_name: "iris_1".into(),
            model_version: "1".into(),
            id: "abc".into(),
            outputs: vec![InferTensor {
                name: "predict".into(),
                datatype: "INT64".into(),
                shape: vec![1, 1],
                contents: None,
            }],
            raw_output_contents: vec![2i64.to_le_bytes().to_vec()],
        };
        (req, resp)
    }

    /// A pair assembled with the default mapping, no timing and event time 0.
    fn pair(
        request: &OipMessage,
        response: &OipMessage,
    ) -> Result<Vec<PredictionEvent>, DecodeError> {
        assemble(
            request,
            response,
            &OipMapping::default(),
            PairTiming::default(),
            0,
        )
    }

    pub(crate) fn request_json() -> &'static [u8] {
        br#"{"id": "req-1", "inputs": [
            {"name": "car_value", "shape": [2], "datatype": "FP64", "data": [39811.0, 12679.0]},
            {"name": "salary_range", "shape": [2, 1], "datatype": "BYTES", "data": [["40K - 60K"], ["0 - 20K"]]},
            {"name": "dense", "shape": [2, 2], "datatype": "FP32", "data": [[0.5, 19.0], [0.7, 7.0]]}
        ]}"#
    }

    pub(crate) fn response_json() -> &'static [u8] {
        br#"{"id": "req-1", "model_name": "car-loan", "model_version": "v3", "outputs": [
            {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.01, 0.99, 0.93, 0.07]}
        ]}"#
    }

    #[test]
    fn json_pair_assembles_one_event_per_row() {
        let req = decode_message(request_json(), Encoding::OipV2Json, false).unwrap();
        let resp = decode_message(response_json(), Encoding::OipV2Json, true).unwrap();
        let mapping = OipMapping {
            feature_names: BTreeMap::from([(
                "dense".into(),
                vec!["debt_to_income_ratio".into(), "loan_length".into()],
            )]),
            variant: Variant::Canary,
            ..OipMapping::default()
        };
        let timing = PairTiming {
            request_ms: Some(1000),
            response_ms: Some(1041),
        };
        let events = assemble(&req, &resp, &mapping, timing, 0).unwrap();
        assert_eq!(events.len(), 2);
        let e = &events[1];
        assert_eq!(e.model, "car-loan");
        assert_eq!(e.model_version.as_deref(), Some("v3"));
        assert_eq!(e.variant, Variant::Canary);
        assert_eq!(e.request_id.as_deref(), Some("req-1:1"));
        assert_eq!(e.features["car_value"], FeatureValue::Number(12679.0));
        assert_eq!(
            e.features["salary_range"],
            FeatureValue::Text("0 - 20K".into())
        );
        assert_eq!(e.features["loan_length"], FeatureValue::Number(7.0));
        assert_eq!(e.prediction, Some(FeatureValue::Number(0.0)));
        assert_eq!(e.confidence, Some(0.93));
        assert_eq!(e.latency_ms, Some(41.0));
        assert_eq!(e.timestamp, EventTime(1041));
    }

    /// Issue 19, finding 1: the product of `[4294967296, 4294967296]` wrapped to 0 in i64 and
    /// matched `"data": []`; assembling the pair then allocated for 2^32 rows. Every shape that
    /// overflows, or claims more rows than a message may carry, is now an `invalid_field` naming
    /// the tensor, before anything is allocated.
    #[test]
    fn shapes_that_overflow_or_claim_too_many_rows_are_refused_before_allocation() {
        for (shape, needle) in [
            (
                "[4294967296, 4294967296]",
                "more than the 65536 one message may carry",
            ),
            (
                "[4294967296, 0]",
                "more than the 65536 one message may carry",
            ),
            (
                "[1, 4294967296, 4294967296]",
                "more elements than a 64-bit count holds",
            ),
            ("[65537]", "more than the 65536 one message may carry"),
        ] {
            let body = format!(
                r#"{{"id": "x", "inputs": [{{"name": "t", "shape": {shape}, "datatype": "FP64", "data": []}}]}}"#
            );
            let err = decode_message(body.as_bytes(), Encoding::OipV2Json, false).unwrap_err();
            assert_eq!(err.reason.as_str(), "invalid_field", "{shape}");
            assert!(
                err.message.contains("tensor `t`"),
                "{shape}: {}",
                err.message
            );
            assert!(err.message.contains(needle), "{shape}: {}", err.message);
        }
        // Zero rows of a huge row size: no element, no event, nothing allocated.
        let empty = br#"{"inputs": [{"name": "t", "shape": [0, 9223372036854775807], "datatype": "FP64", "data": []}]}"#;
        let m = decode_message(empty, Encoding::OipV2Json, false).unwrap();
        assert_eq!(rows_cols(&m.tensors[0]).0, 0);
        let resp = decode_message(
            br#"{"model_name": "m", "outputs": [{"name": "p", "shape": [0], "datatype": "FP64", "data": []}]}"#,
            Encoding::OipV2Json,
            true,
        )
        .unwrap();
        let events = pair(&m, &resp);
        assert!(events.unwrap().is_empty());
        // Found by review: rows of no values (shape `[1, 0]`) indexed an empty tensor in
        // `row_output` and panicked; an input-less request indexed `tensors[0]`.
        let one = decode_message(
            br#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}"#,
            Encoding::OipV2Json,
            false,
        )
        .unwrap();
        for datatype in ["BYTES", "BOOL", "FP64"] {
            let empty_rows = format!(
                r#"{{"model_name": "m", "outputs": [{{"name": "p", "shape": [1, 0], "datatype": "{datatype}", "data": []}}]}}"#
            );
            let resp = decode_message(empty_rows.as_bytes(), Encoding::OipV2Json, true).unwrap();
            let err = pair(&one, &resp).unwrap_err();
            assert_eq!(err.reason.as_str(), "invalid_field");
            assert!(
                err.message
                    .contains("tensor `p` has shape [1, 0]: 1 rows of no values"),
                "{}",
                err.message
            );
        }
        let no_inputs = OipMessage {
            id: String::new(),
            model_name: "m".into(),
            model_version: String::new(),
            tensors: Vec::new(),
        };
        let err = pair(&no_inputs, &one).unwrap_err();
        assert_eq!(err.message, "the request has no input tensor");
        let at_limit = format!(
            r#"{{"inputs": [{{"name": "t", "shape": [65536], "datatype": "FP64", "data": [{}]}}]}}"#,
            vec!["1"; 65_536].join(",")
        );
        let m = decode_message(at_limit.as_bytes(), Encoding::OipV2Json, false).unwrap();
        assert_eq!(rows_cols(&m.tensors[0]), (65_536, 1));
    }

    /// Issue 19, finding 8: class "probabilities" above 1 silently dropped the confidence; the
    /// pair is now refused with the value.
    #[test]
    fn class_probabilities_outside_the_unit_interval_are_refused_with_the_value() {
        let req = decode_message(request_json(), Encoding::OipV2Json, false).unwrap();
        let logits = br#"{"id": "req-1", "model_name": "car-loan", "outputs": [
            {"name": "logits", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.2, 2.5, -1.0]}
        ]}"#;
        let resp = decode_message(logits, Encoding::OipV2Json, true).unwrap();
        let err = pair(&req, &resp).unwrap_err();
        assert_eq!(err.reason.as_str(), "invalid_confidence");
        assert!(err.message.contains("2.5"), "{}", err.message);
    }

    /// Review of issue 19, finding 6: the pairers weighed halves by wire bytes, but `0,` is 2
    /// bytes of JSON and 8 decoded.
    #[test]
    fn decoded_size_counts_each_value_as_stored() {
        let zeros = format!(
            r#"{{"inputs": [{{"name": "x", "shape": [1000], "datatype": "FP64", "data": [{}]}}]}}"#,
            vec!["0"; 1000].join(",")
        );
        let m = decode_message(zeros.as_bytes(), Encoding::OipV2Json, false).unwrap();
        assert!(zeros.len() < 2100, "{}", zeros.len());
        assert_eq!(
            m.heap_bytes(),
            1 + 8 + 8000 + std::mem::size_of::<Tensor>(),
            "name, shape, 1000 f64 and the tensor header"
        );
    }

    #[test]
    fn wrong_datatype_is_an_invalid_field_naming_the_tensor() {
        let bad = br#"{"id": "x", "inputs": [{"name": "car_value", "shape": [1], "datatype": "FP32", "data": ["high"]}]}"#;
        let err = decode_message(bad, Encoding::OipV2Json, false).unwrap_err();
        assert_eq!(err.reason.as_str(), "invalid_field");
        assert!(
            err.message.contains("tensor `car_value`: datatype FP32"),
            "{}",
            err.message
        );
        let bad_shape =
            br#"{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}"#;
        assert!(
            decode_message(bad_shape, Encoding::OipV2Json, false)
                .unwrap_err()
                .message
                .contains("needs 3 values")
        );
    }

    #[test]
    fn protobuf_request_and_response_as_seldon_writes_them() {
        let (req, resp) = seldon_pair();
        let r = decode_message(&req.encode_to_vec(), Encoding::OipV2Protobuf, false).unwrap();
        let s = decode_message(&resp.encode_to_vec(), Encoding::OipV2Protobuf, true).unwrap();
        let mapping = OipMapping {
            model: Some("iris".into()),
            feature_names: BTreeMap::from([(
                "predict".into(),
                vec!["sl".into(), "sw".into(), "pl".into(), "pw".into()],
            )]),
            ..OipMapping::default()
        };
        let events = assemble(&r, &s, &mapping, PairTiming::default(), 5).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].features["pw"], FeatureValue::Number(4.0));
        assert_eq!(events[0].prediction, Some(FeatureValue::Number(2.0)));
        assert_eq!(events[0].model, "iris");
        assert_eq!(events[0].timestamp, EventTime(5));
    }

    #[test]
    fn json_on_a_protobuf_topic_and_the_reverse_are_wrong_encoding() {
        let err = decode_message(request_json(), Encoding::OipV2Protobuf, false).unwrap_err();
        assert_eq!(err.reason.as_str(), "wrong_encoding");
        let frame = ModelInferRequest {
            id: "a".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let err = decode_message(&frame, Encoding::OipV2Json, false).unwrap_err();
        assert_eq!(err.reason.as_str(), "wrong_encoding");
    }

    #[test]
    fn batch_sizes_must_agree() {
        let req = decode_message(request_json(), Encoding::OipV2Json, false).unwrap();
        let resp = decode_message(
            br#"{"model_name": "m", "outputs": [{"name": "p", "shape": [3], "datatype": "INT64", "data": [1, 0, 1]}]}"#,
            Encoding::OipV2Json,
            true,
        )
        .unwrap();
        let err = pair(&req, &resp).unwrap_err();
        assert!(err.message.contains("has 3 rows"), "{}", err.message);
    }
}
