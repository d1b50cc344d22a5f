//! Replaying a prediction-log file (CSV or Parquet) as prediction events, to Kafka or HTTP: the
//! load generator for tests, demos and benchmarks (`driftwatch replay`).
//!
//! Columns map to events by role: the timestamp, id, prediction, confidence (or positive-class
//! probability) and latency columns by name (flags, or the usual names when present), every other
//! column is a feature. With `speedup` the log's event time is compressed and moved to now
//! (`t' = start + (t - t0) / speedup`) and events are sent when `t'` comes due, so a year of
//! predictions plays back in minutes with windows that close as they would have.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tables::columns::{FeatureKind, infer_kind, to_f64, to_text};
use tables::table::{ReadOptions, Table, read_table};
use tables::time::TimestampFormat;

use crate::event::{EventTime, FeatureValue, PredictionEvent, Variant};

/// Where replayed events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `kafka://host:port[,host:port]/topic`: one JSON event per message, keyed by request id.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
    },
    /// `http://host:port[/path]`: NDJSON posts (path default `/v1/events`).
    Http {
        /// Full URL.
        url: String,
    },
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("kafka://") {
            let (brokers, topic) = rest
                .split_once('/')
                .ok_or_else(|| format!("`{s}`: expected kafka://host:port/topic"))?;
            if brokers.is_empty() || topic.is_empty() {
                return Err(format!("`{s}`: expected kafka://host:port/topic"));
            }
            return Ok(Target::Kafka {
                brokers: brokers.into(),
                topic: topic.into(),
            });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let after = s.split_once("://").map(|(_, r)| r).unwrap_or_default();
            let url = if after.contains('/') {
                s.to_string()
            } else {
                format!("{s}/v1/events")
            };
            return Ok(Target::Http { url });
        }
        Err(format!(
            "`{s}`: expected kafka://host:port/topic or http://host:port[/path]"
        ))
    }
}

/// How a log file becomes events.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// The log (CSV or Parquet).
    pub input: PathBuf,
    /// Model name of the events.
    pub model: String,
    /// Model version of the events.
    pub model_version: Option<String>,
    /// Variant of the events.
    pub variant: Variant,
    /// Event-time column (default `timestamp` when present, else the replay time).
    pub timestamp_column: Option<String>,
    /// How it writes time.
    pub timestamp_format: TimestampFormat,
    /// Request-id column (default `request_id` or `id` when present).
    pub id_column: Option<String>,
    /// Prediction column (default `prediction` or `y_pred` when present).
    pub prediction_column: Option<String>,
    /// Confidence column taken as is (default `confidence` when present).
    pub confidence_column: Option<String>,
    /// Positive-class probability of a binary classifier (default `y_pred_proba` when present):
    /// the confidence is `max(p, 1 - p)`.
    pub probability_column: Option<String>,
    /// Latency column in milliseconds (default `latency_ms` when present).
    pub latency_column: Option<String>,
    /// A synthetic latency with this mean (milliseconds) for logs without one (demos, load tests);
    /// deterministic per row.
    pub synthetic_latency_ms: Option<f64>,
    /// Features (default: every other column except `exclude` and the usual non-feature names).
    pub features: Vec<String>,
    /// Columns that are not features.
    pub exclude: Vec<String>,
    /// Compress event time by this factor and move it to now.
    pub speedup: Option<f64>,
    /// Send without waiting for compressed event time to come due (timestamps are still
    /// rewritten).
    pub no_wait: bool,
    /// At most this many events per second.
    pub rate: Option<f64>,
    /// Start here (0-based row) and stop after `limit` rows.
    pub skip: usize,
    /// Rows to send (default all).
    pub limit: Option<usize>,
    /// Extra librdkafka producer settings for a Kafka target, applied after replay's own
    /// (`bootstrap.servers`, `linger.ms`, `queue.buffering.max.messages`, `message.timeout.ms`),
    /// e.g. `security.protocol = ssl` and `ssl.ca.location` for a TLS listener.
    pub kafka_client: BTreeMap<String, String>,
}

impl ReplayOptions {
    /// Options with every default for `input` and `model`.
    pub fn new(input: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            model: model.into(),
            model_version: None,
            variant: Variant::Stable,
            timestamp_column: None,
            timestamp_format: TimestampFormat::Auto,
            id_column: None,
            prediction_column: None,
            confidence_column: None,
            probability_column: None,
            latency_column: None,
            synthetic_latency_ms: None,
            features: Vec::new(),
            exclude: Vec::new(),
            speedup: None,
            no_wait: false,
            rate: None,
            skip: 0,
            limit: None,
            kafka_client: BTreeMap::new(),
        }
    }
}

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] tables::TableError),
    /// A column named in the options is missing or has the wrong type.
    #[error("{0}")]
    Column(String),
    /// Kafka refused the producer or a message.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The HTTP target refused the events.
    #[error("http: {0}")]
    Http(String),
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySummary {
    /// Events delivered.
    pub sent: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Kafka only: per partition, one past the highest offset the broker assigned to a delivered
    /// event (the partition's end after this replay, when nothing else produces). Empty for HTTP.
    pub partition_ends: BTreeMap<i32, i64>,
}

/// Receives replay progress.
pub trait ReplayProgress: Sync {
    /// `total` events will be sent.
    fn start(&self, _total: u64) {}
    /// `n` more were sent.
    fn sent(&self, _n: u64) {}
}

/// A [`ReplayProgress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ReplayProgress for Quiet {}

const ID_NAMES: [&str; 2] = ["request_id", "id"];
const PREDICTION_NAMES: [&str; 2] = ["prediction", "y_pred"];

/// Reads `options.input` and turns every row into an event (timestamps rewritten when
/// `speedup` is set, relative to `start_ms`).
///
/// # Errors
/// [`ReplayError::Read`] for an unreadable file, [`ReplayError::Column`] for a named column that
/// does not exist or an unparsable timestamp (naming the line).
pub fn events_from_file(
    options: &ReplayOptions,
    start_ms: i64,
) -> Result<Vec<PredictionEvent>, ReplayError> {
    let mut text = std::collections::BTreeSet::new();
    let ts_col = options
        .timestamp_column
        .clone()
        .or_else(|| Some("timestamp".into()));
    if let Some(c) = &ts_col {
        text.insert(c.clone());
    }
    let table = read_table(
        &options.input,
        &ReadOptions {
            text_columns: text,
            select: None,
        },
    )?;
    let pick = |given: &Option<String>,
                defaults: &[&str],
                what: &str|
     -> Result<Option<String>, ReplayError> {
        match given {
            Some(c) if table.has_column(c) => Ok(Some(c.clone())),
            Some(c) => Err(ReplayError::Column(format!(
                "{} has no column `{c}` (the {what} column); its columns are: {}",
                table.path.display(),
                table.column_names().join(", ")
            ))),
            None => Ok(defaults
                .iter()
                .find(|d| table.has_column(d))
                .map(|d| d.to_string())),
        }
    };
    let ts = pick(&options.timestamp_column, &["timestamp"], "timestamp")?;
    let id = pick(&options.id_column, &ID_NAMES, "id")?;
    let prediction = pick(&options.prediction_column, &PREDICTION_NAMES, "prediction")?;
    let confidence = pick(&options.confidence_column, &["confidence"], "confidence")?;
    let probability = if confidence.is_some() {
        None
    } else {
        pick(
            &options.probability_column,
            &["y_pred_proba"],
            "probability",
        )?
    };
    let latency = pick(&options.latency_column, &["latency_ms"], "latency")?;
    let roles: Vec<&String> = [&ts, &id, &prediction, &confidence, &probability, &latency]
        .into_iter()
        .flatten()
        .collect();
    let features: Vec<String> = if options.features.is_empty() {
        table
            .column_names()
            .into_iter()
            .filter(|c| !roles.contains(&c) && !options.exclude.contains(c))
            .filter(|c| !tables::columns::NON_FEATURE_COLUMNS.contains(&c.as_str()))
            .collect()
    } else {
        for f in &options.features {
            pick(&Some(f.clone()), &[], "feature")?;
        }
        options.features.clone()
    };

    let rows = table.num_rows;
    let first = options.skip.min(rows);
    let last = options.limit.map_or(rows, |l| (first + l).min(rows));
    let times = match &ts {
        Some(c) => Some(timestamps(&table, c, &options.timestamp_format)?),
        None => None,
    };
    let t0 = times
        .as_ref()
        .and_then(|t| t.get(first).copied())
        .unwrap_or(start_ms);
    let time_of = |row: usize| -> i64 {
        match (&times, options.speedup) {
            (Some(t), Some(s)) => start_ms + compress(t[row] - t0, s),
            (Some(t), None) => t[row],
            (None, _) => start_ms,
        }
    };
    let feature_columns: Vec<(String, Vec<FeatureValue>)> = features
        .iter()
        .map(|f| Ok((f.clone(), column_values(&table, f)?)))
        .collect::<Result<_, ReplayError>>()?;
    let id_values = id.as_ref().map(|c| column_values(&table, c)).transpose()?;
    let prediction_values = prediction
        .as_ref()
        .map(|c| column_values(&table, c))
        .transpose()?;
    let confidence_values = confidence
        .as_ref()
        .map(|c| numbers(&table, c))
        .transpose()?;
    let probability_values = probability
        .as_ref()
        .map(|c| numbers(&table, c))
        .transpose()?;
    let latency_values = latency.as_ref().map(|c| numbers(&table, c)).transpose()?;

    let mut events = Vec::with_capacity(last - first);
    for row in first..last {
        let confidence = confidence_values
            .as_ref()
            .and_then(|v| v[row])
            .or_else(|| {
                probability_values
                    .as_ref()
                    .and_then(|v| v[row])
                    .map(|p| p.max(1.0 - p))
            })
            .filter(|c| (0.0..=1.0).contains(c));
        let latency_ms = latency_values.as_ref().and_then(|v| v[row]).or_else(|| {
            options
                .synthetic_latency_ms
                .map(|mean| synthetic_latency(mean, row))
        });
        events.push(PredictionEvent {
            timestamp: EventTime(time_of(row)),
            model: options.model.clone(),
            model_version: options.model_version.clone(),
            variant: options.variant,
            request_id: id_values.as_ref().and_then(|v| v[row].as_category()),
            features: feature_columns
                .iter()
                .map(|(name, values)| (name.clone(), values[row].clone()))
                .collect(),
            prediction: prediction_values
                .as_ref()
                .map(|v| v[row].clone())
                .filter(|v| *v != FeatureValue::Null),
            confidence,
            latency_ms,
        });
    }
    Ok(events)
}

/// A deterministic latency around `mean` ms for row `row`: log-normal-like spread from a hash.
fn synthetic_latency(mean: f64, row: usize) -> f64 {
    let mut x = (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    let u = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    (mean * (0.5 + u).powi(2) * 1.2).max(0.1)
}

fn timestamps(
    table: &Table,
    column: &str,
    format: &TimestampFormat,
) -> Result<Vec<i64>, ReplayError> {
    let mut out = Vec::with_capacity(table.num_rows);
    let mut row = 0;
    for chunk in table.column(column).unwrap_or_default() {
        let text = to_text(&chunk).map_err(ReplayError::Column)?;
        for v in text.iter() {
            let ms = v
                .ok_or_else(|| "the timestamp is missing".to_string())
                .and_then(|s| format.parse_millis(s))
                .map_err(|m| {
                    ReplayError::Column(format!(
                        "{}, {}, column `{column}`: {m}",
                        table.path.display(),
                        table.locate(row)
                    ))
                })?;
            out.push(ms);
            row += 1;
        }
    }
    Ok(out)
}

fn numbers(table: &Table, column: &str) -> Result<Vec<Option<f64>>, ReplayError> {
    let mut out = Vec::with_capacity(table.num_rows);
    let mut row = 0;
    for chunk in table.column(column).unwrap_or_default() {
        let floats = to_f64(&chunk).map_err(|bad| {
            ReplayError::Column(format!(
                "{}, {}, column `{column}`: `{}` is not a number",
                table.path.display(),
                table.locate(row + bad.index),
                bad.value
            ))
        })?;
        row += chunk.len();
        out.extend(floats.iter().map(|v| v.filter(|x| x.is_finite())));
    }
    Ok(out)
}

fn column_values(table: &Table, column: &str) -> Result<Vec<FeatureValue>, ReplayError> {
    let mut out = Vec::with_capacity(table.num_rows);
    for chunk in table.column(column).unwrap_or_default() {
        append_values(&chunk, &mut out)
            .map_err(|m| ReplayError::Column(format!("column `{column}`: {m}")))?;
    }
    Ok(out)
}

fn append_values(array: &ArrayRef, out: &mut Vec<FeatureValue>) -> Result<(), String> {
    if array.data_type() == &DataType::Boolean {
        let b = array
            .as_any()
            .downcast_ref::<arrow::array::BooleanArray>()
            .ok_or("not a bool column")?;
        out.extend(
            b.iter()
                .map(|v| v.map_or(FeatureValue::Null, FeatureValue::Bool)),
        );
        return Ok(());
    }
    match infer_kind(array.data_type()) {
        Some(FeatureKind::Numeric) => {
            let f = to_f64(array).map_err(|b| b.value)?;
            out.extend(f.iter().map(|v| match v {
                Some(x) if x.is_finite() => FeatureValue::Number(x),
                _ => FeatureValue::Null,
            }));
        }
        _ => {
            let t = to_text(array)?;
            out.extend(
                t.iter()
                    .map(|v| v.map_or(FeatureValue::Null, |s| FeatureValue::Text(s.to_string()))),
            );
        }
    }
    Ok(())
}

/// `elapsed_ms / speedup`, truncated to the millisecond, except that a quotient within 1e-6 ms of a
/// whole millisecond is that millisecond. Truncation keeps each compressed event in the window its
/// real time falls in (rounding moved the last rows of a period into the next window, e.g. the
/// demo's 2-prediction 21st window); the tolerance keeps floating-point error from moving an event
/// on a boundary into the previous one.
fn compress(elapsed_ms: i64, speedup: f64) -> i64 {
    let x = elapsed_ms as f64 / speedup;
    let nearest = x.round();
    if (x - nearest).abs() < 1e-6 {
        nearest as i64
    } else {
        x.floor() as i64
    }
}

/// Sends `events` to `target`, paced by their (rewritten) event time when `options.speedup` is
/// set and `no_wait` is not, and by `options.rate`.
///
/// # Errors
/// [`ReplayError::Kafka`] or [`ReplayError::Http`] when the target refuses events after retries.
pub async fn send(
    events: Vec<PredictionEvent>,
    target: &Target,
    options: &ReplayOptions,
    progress: &dyn ReplayProgress,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let wall_start = chrono::Utc::now().timestamp_millis();
    progress.start(events.len() as u64);
    let pace = Pacer {
        rate: options.rate,
        started,
        by_event_time: options.speedup.is_some() && !options.no_wait,
        wall_start,
    };
    let mut partition_ends = BTreeMap::new();
    let sent = match target {
        Target::Kafka { brokers, topic } => {
            send_kafka(
                events,
                brokers,
                topic,
                &options.kafka_client,
                &pace,
                progress,
                &mut partition_ends,
            )
            .await?
        }
        Target::Http { url } => send_http(events, url, &pace, progress).await?,
    };
    Ok(ReplaySummary {
        sent,
        elapsed: started.elapsed(),
        partition_ends,
    })
}

struct Pacer {
    rate: Option<f64>,
    started: Instant,
    by_event_time: bool,
    wall_start: i64,
}

impl Pacer {
    /// Waits until event number `i` with event time `t_ms` may go.
    async fn wait(&self, i: u64, t_ms: i64) {
        let mut due = Duration::ZERO;
        if let Some(r) = self.rate.filter(|r| *r > 0.0) {
            due = due.max(Duration::from_secs_f64(i as f64 / r));
        }
        if self.by_event_time {
            due = due.max(Duration::from_millis((t_ms - self.wall_start).max(0) as u64));
        }
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

async fn send_kafka(
    events: Vec<PredictionEvent>,
    brokers: &str,
    topic: &str,
    client: &BTreeMap<String, String>,
    pace: &Pacer,
    progress: &dyn ReplayProgress,
    ends: &mut BTreeMap<i32, i64>,
) -> Result<u64, ReplayError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "60000");
    for (k, v) in client {
        config.set(k, v);
    }
    let producer: FutureProducer = config.create()?;
    let mut sent = 0u64;
    let mut in_flight = Vec::with_capacity(1024);
    for (i, e) in events.iter().enumerate() {
        pace.wait(i as u64, e.timestamp.0).await;
        let payload = serde_json::to_vec(e).map_err(|err| ReplayError::Column(err.to_string()))?;
        let key = e.request_id.clone().unwrap_or_else(|| i.to_string());
        let record = FutureRecord::to(topic).payload(&payload).key(&key);
        in_flight.push(
            producer
                .send_result(record)
                .map_err(|(err, _)| ReplayError::Kafka(err))?,
        );
        if in_flight.len() >= 1024 {
            sent += settle(&mut in_flight, ends).await?;
            progress.sent(1024);
        }
    }
    let rest = in_flight.len() as u64;
    sent += settle(&mut in_flight, ends).await?;
    progress.sent(rest);
    producer.flush(Duration::from_secs(30))?;
    Ok(sent)
}

async fn settle(
    in_flight: &mut Vec<rdkafka::producer::DeliveryFuture>,
    ends: &mut BTreeMap<i32, i64>,
) -> Result<u64, ReplayError> {
    let mut ok = 0;
    for f in in_flight.drain(..) {
        match f.await {
            Ok(Ok(delivery)) => {
                ok += 1;
                let end = ends.entry(delivery.partition).or_insert(0);
                *end = (*end).max(delivery.offset + 1);
            }
            Ok(Err((e, _))) => return Err(ReplayError::Kafka(e)),
            Err(_) => return Err(ReplayError::Http("the producer was dropped".into())),
        }
    }
    Ok(ok)
}

async fn send_http(
    events: Vec<PredictionEvent>,
    url: &str,
    pace: &Pacer,
    progress: &dyn ReplayProgress,
) -> Result<u64, ReplayError> {
    let client = reqwest::Client::new();
    let mut sent = 0u64;
    let mut body = Vec::new();
    let mut n = 0u64;
    for (i, e) in events.iter().enumerate() {
        pace.wait(i as u64, e.timestamp.0).await;
        serde_json::to_writer(&mut body, e).map_err(|err| ReplayError::Column(err.to_string()))?;
        body.push(b'\n');
        n += 1;
        // Post every 500 events, or at once when pacing makes each event wait.
        if n >= 500 || (pace.by_event_time && pace.rate.is_none() && n >= 50) {
            post(&client, url, std::mem::take(&mut body)).await?;
            sent += n;
            progress.sent(n);
            n = 0;
        }
    }
    if n > 0 {
        post(&client, url, body).await?;
        sent += n;
        progress.sent(n);
    }
    Ok(sent)
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), ReplayError> {
    let mut backoff = Duration::from_millis(50);
    for _ in 0..20 {
        let resp = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| ReplayError::Http(format!("POST {url}: {e}")))?;
        match resp.status().as_u16() {
            200..=299 => return Ok(()),
            503 | 429 => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            status => {
                let text = resp.text().await.unwrap_or_default();
                return Err(ReplayError::Http(format!("POST {url}: {status} {text}")));
            }
        }
    }
    Err(ReplayError::Http(format!(
        "POST {url}: still backpressured after 20 retries"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "kafka://127.0.0.1:9092/events".parse::<Target>().unwrap(),
            Target::Kafka {
                brokers: "127.0.0.1:9092".into(),
                topic: "events".into()
            }
        );
        assert_eq!(
            "http://localhost:8080".parse::<Target>().unwrap(),
            Target::Http {
                url: "http://localhost:8080/v1/events".into()
            }
        );
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("kafka://host".parse::<Target>().is_err());
    }

    /// Regression: compressed time was rounded, so the last row of a 5,000-row period at 999.8 ms
    /// went to 1000 ms, into the next 1-second window (the demo's 21st window of 2 predictions).
    #[test]
    fn compressed_time_stays_in_its_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        // Rows 0 and 4,999 of a log spaced 523,152 ms apart, compressed to 5,000 rows per second.
        std::fs::write(&path, "timestamp,x\n0,1\n2615236848,2\n").unwrap();
        let mut options = ReplayOptions::new(&path, "m");
        options.speedup = Some(5000.0 * 523_152.0 / 1000.0);
        let events = events_from_file(&options, 0).unwrap();
        assert_eq!(events[0].timestamp, EventTime(0));
        assert_eq!(events[1].timestamp, EventTime(999));
        // A quotient a hair below a whole millisecond (float error) is that millisecond.
        assert_eq!(compress(3 * 523_152, 3.0 * 523_152.0 / 1000.0), 1000);
        assert_eq!(compress(-1, 3.0), -1);
    }

    #[test]
    fn car_loan_rows_become_events_with_compressed_time() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/car_loan/analysis.csv");
        let mut options = ReplayOptions::new(path, "car-loan");
        options.speedup = Some(1000.0);
        options.limit = Some(3);
        let events = events_from_file(&options, 1_000_000).unwrap();
        assert_eq!(events.len(), 3);
        // 8 minutes 43.152 s apart in the log, 523.152 ms apart after a 1000x speed-up.
        assert_eq!(events[0].timestamp, EventTime(1_000_000));
        assert_eq!(events[1].timestamp, EventTime(1_000_523));
        let e = &events[0];
        assert_eq!(e.request_id.as_deref(), Some("50000"));
        assert_eq!(e.features.len(), 7, "{:?}", e.features.keys());
        assert_eq!(e.features["car_value"], FeatureValue::Number(12638.0));
        assert_eq!(
            e.features["repaid_loan_on_prev_car"],
            FeatureValue::Bool(false)
        );
        assert_eq!(
            e.features["salary_range"],
            FeatureValue::Text("0 - 20K €".into())
        );
        assert_eq!(e.prediction, Some(FeatureValue::Number(1.0)));
        assert_eq!(e.confidence, Some(0.99));
        assert_eq!(events[1].confidence, Some(0.98));
    }
}
