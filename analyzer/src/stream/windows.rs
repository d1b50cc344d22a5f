//! Event-time tumbling windows per model, version and variant.
//!
//! - Each event falls in the window `[floor(t / size) * size, + size)` of its series.
//! - A model's watermark is the largest event time seen minus the allowed lateness; a window closes
//!   once the watermark reaches its end. A model that stops sending has its windows closed after
//!   `idle_close_after` of wall time, so the last window of a stream is not held forever.
//! - An event for a window that has already closed is late: it is counted per model
//!   (`late_events`), never silently dropped and never added to a closed window.
//! - A window keeps its record batches (shared, zero-copy) up to `max_window_events`; beyond that
//!   rows are counted but not retained and the report says `sampled`. At close one typed pass over
//!   the window's batches computes the request count, latency (seconds) and confidence quantiles,
//!   the missing ratio and the drift of every feature (`window_stats`); the user's own SQL metrics
//!   run as DataFusion queries (with the drift UDAFs of [`crate::sql`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, TimestampMillisecondType};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::drift::DriftSettings;
use crate::error::AnalyzerError;
use crate::event_schema::{MODEL_VERSION, TIMESTAMP, VARIANT};
use crate::profile::ReferenceProfile;
use crate::sql::{self, ProfileSet};
use crate::stream::report::{ClosedWindow, Quantiles, SeriesKey, WindowReport};
use crate::stream::window_stats::{WindowStats, quantiles};

/// A user-defined per-window metric: SQL over the window's rows (table `events`, with the columns
/// of [`crate::event_schema`]) returning one number, exported as
/// `model_window_metric{metric=name}` and usable in alert rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMetric {
    /// Metric name (the `metric` label), e.g. `error_rate_low_income`.
    pub name: String,
    /// A query over table `events` whose first column of the first row is the value, e.g.
    /// `SELECT avg(CASE WHEN prediction = '1' THEN 1.0 ELSE 0.0 END) FROM events WHERE salary_range = '0 - 20K €'`.
    pub sql: String,
}

/// Window settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSettings {
    /// Window length in event time (default `1m`).
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// How far behind the newest event an event may arrive and still count (default `10s`).
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Close a model's open windows after this much wall time without events (default `10s`).
    #[serde(with = "humantime_serde")]
    pub idle_close_after: Duration,
    /// Rows retained per window for statistics (default 500,000); more are counted, not retained.
    pub max_window_events: usize,
    /// How far ahead of the service's clock an event's time may be (default `1h`). Events further
    /// ahead are rejected and counted (`event_time_future`) and never move a watermark: one event
    /// from a bad clock (year 3000) would otherwise make every later event late.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// How far behind the service's clock an event's time may be (default: no limit). Events
    /// older are rejected and counted (`event_time_too_old`). Set it when producers may send
    /// zeroed or stale timestamps; leave it unset to ingest replays of old logs.
    #[serde(default, with = "humantime_serde")]
    pub max_event_age: Option<Duration>,
    /// How far a source (a Kafka partition, HTTP ingest) may fall behind the model's most
    /// advanced source and still hold the watermark back (default `5m`). A model's watermark is
    /// the smallest newest-event time over its sources that delivered within
    /// `idle_close_after` and are within this lag of the leader, minus `allowed_lateness`: one
    /// producer ahead of the rest cannot make their events late, and one far behind or silent
    /// cannot keep windows open (its events then count as late).
    #[serde(with = "humantime_serde")]
    pub max_source_lag: Duration,
    /// Drift statistics, verdict methods, thresholds and minimum sample size.
    pub drift: DriftSettings,
    /// User-defined per-window SQL metrics.
    pub custom_metrics: Vec<CustomMetric>,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            size: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(10),
            idle_close_after: Duration::from_secs(10),
            max_window_events: 500_000,
            max_future_skew: Duration::from_secs(3600),
            max_event_age: None,
            max_source_lag: Duration::from_secs(300),
            drift: DriftSettings::default(),
            custom_metrics: Vec::new(),
        }
    }
}

/// One open window.
#[derive(Debug, Clone, Default)]
pub struct OpenWindow {
    /// Retained batches.
    pub batches: Vec<RecordBatch>,
    /// Rows seen (retained or not).
    pub rows: u64,
    /// Rows retained.
    pub retained: u64,
    /// Batches already written to the checkpoint.
    pub checkpointed_batches: usize,
}

/// Per-model watermark state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelClock {
    /// Largest event time seen (epoch ms).
    pub max_event_ms: Option<i64>,
    /// Largest event time seen per source (a Kafka partition, HTTP ingest), for the watermark
    /// rule of [`Windows::due`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, i64>,
    /// Windows ending at or before this (epoch ms) are closed.
    pub closed_until_ms: Option<i64>,
    /// Late events so far.
    pub late_events: u64,
}

struct ModelState {
    clock: ModelClock,
    last_arrival: Instant,
    /// When each source last delivered events of this model (wall time; sources restored from a
    /// checkpoint count from the restore).
    source_arrivals: HashMap<String, Instant>,
    /// The session the user's SQL metrics run in (the drift UDAFs bound to `profiles`).
    ctx: SessionContext,
    /// The reference profile's features, in profile order (empty without a profile).
    features: Vec<String>,
    /// The features' prepared models and the drift settings windows judge with.
    profiles: Arc<ProfileSet>,
    /// Each custom metric's query, planned once ([`sql::PreparedQuery`]) by metric name.
    custom_queries: HashMap<String, sql::PreparedQuery>,
}

/// What [`Windows::absorb`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// Rows added to open windows.
    pub accepted: u64,
    /// Rows for windows that had already closed.
    pub late: u64,
    /// Rows whose event time is further ahead of the service's clock than `max_future_skew`.
    pub future: u64,
    /// Rows whose event time is further behind the service's clock than `max_event_age`.
    pub too_old: u64,
}

/// The open windows of every model.
pub struct Windows {
    settings: WindowSettings,
    profiles: HashMap<String, Arc<ReferenceProfile>>,
    models: HashMap<String, ModelState>,
    open: BTreeMap<(SeriesKey, i64), OpenWindow>,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("open", &self.open.len())
            .field("models", &self.models.len())
            .finish()
    }
}

impl Windows {
    /// Windows with `settings` and a reference profile per model (models without one get counts,
    /// latency and confidence but no drift).
    pub fn new(settings: WindowSettings, profiles: HashMap<String, Arc<ReferenceProfile>>) -> Self {
        Self {
            settings,
            profiles,
            models: HashMap::new(),
            open: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &WindowSettings {
        &self.settings
    }

    fn size_ms(&self) -> i64 {
        self.settings.size.as_millis().max(1) as i64
    }

    fn model(&mut self, model: &str) -> &mut ModelState {
        let settings = &self.settings;
        let profiles = &self.profiles;
        self.models.entry(model.to_string()).or_insert_with(|| {
            let (set, features) = match profiles.get(model) {
                Some(p) => (
                    ProfileSet::new(p, settings.drift.clone()),
                    p.feature_names(),
                ),
                None => (ProfileSet::empty(settings.drift.clone()), Vec::new()),
            };
            let profiles = Arc::new(set);
            ModelState {
                clock: ModelClock::default(),
                last_arrival: Instant::now(),
                source_arrivals: HashMap::new(),
                ctx: sql::session(profiles.clone()),
                features,
                profiles,
                custom_queries: HashMap::new(),
            }
        })
    }

    /// Adds a batch of `model`'s events (layout of [`crate::event_schema`]), judging event times
    /// against the service's clock now.
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] when the batch lacks the timestamp column.
    pub fn absorb(&mut self, model: &str, batch: &RecordBatch) -> Result<Absorbed, AnalyzerError> {
        self.absorb_at(model, batch, chrono::Utc::now().timestamp_millis())
    }

    /// [`Windows::absorb`] with the service's clock at `now_ms` (epoch milliseconds): rows whose
    /// event time lies outside `[now_ms - max_event_age, now_ms + max_future_skew]` are counted in
    /// [`Absorbed::future`] or [`Absorbed::too_old`], and neither enter a window nor move the
    /// model's watermark.
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] when the batch lacks the timestamp column.
    pub fn absorb_at(
        &mut self,
        model: &str,
        batch: &RecordBatch,
        now_ms: i64,
    ) -> Result<Absorbed, AnalyzerError> {
        self.absorb_from(model, "", batch, now_ms)
    }

    /// [`Windows::absorb_at`] of a batch from one `source` (a Kafka partition, HTTP ingest): the
    /// source's newest event time takes part in the model's watermark ([`Windows::due`]).
    ///
    /// # Errors
    /// As [`Windows::absorb_at`].
    pub fn absorb_from(
        &mut self,
        model: &str,
        source: &str,
        batch: &RecordBatch,
        now_ms: i64,
    ) -> Result<Absorbed, AnalyzerError> {
        let size = self.size_ms();
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let latest = now_ms.saturating_add(millis(self.settings.max_future_skew));
        let earliest = self
            .settings
            .max_event_age
            .map_or(i64::MIN, |age| now_ms.saturating_sub(millis(age)));
        let max_events = self.settings.max_window_events as u64;
        let ts = batch
            .column_by_name(TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| {
                AnalyzerError::Query("event batch without a millisecond `timestamp` column".into())
            })?
            .clone();
        let versions = text_column(batch, MODEL_VERSION);
        let variants = text_column(batch, VARIANT);
        let state = self.model(model);
        let arrived = Instant::now();
        state.last_arrival = arrived;
        let closed_until = state.clock.closed_until_ms;
        // Group row indices by (version, variant, window start).
        let mut groups: BTreeMap<(&str, &str, i64), Vec<u32>> = BTreeMap::new();
        let (mut late, mut future, mut too_old) = (0u64, 0u64, 0u64);
        let mut max_ts = state.clock.max_event_ms;
        let mut source_max: Option<i64> = None;
        for i in 0..batch.num_rows() {
            let t = ts.value(i);
            if t > latest {
                future += 1;
                continue;
            }
            if t < earliest {
                too_old += 1;
                continue;
            }
            // A window whose start or end does not fit an i64 lies at the ends of time (review
            // found `i64::MIN` overflowing here while `max_event_age` is unset).
            let Some(start) = t.div_euclid(size).checked_mul(size) else {
                too_old += 1;
                continue;
            };
            if start.checked_add(size).is_none() {
                future += 1;
                continue;
            }
            if closed_until.is_some_and(|c| start + size <= c) {
                late += 1;
                continue;
            }
            max_ts = Some(max_ts.map_or(t, |m| m.max(t)));
            source_max = Some(source_max.map_or(t, |m| m.max(t)));
            let version = versions.as_ref().map_or("", |v| v(i));
            let variant = variants.as_ref().map_or("stable", |v| v(i));
            groups
                .entry((version, variant, start))
                .or_default()
                .push(i as u32);
        }
        state.clock.max_event_ms = max_ts;
        state.clock.late_events += late;
        if let Some(t) = source_max {
            let newest = state.clock.sources.entry(source.to_string()).or_insert(t);
            *newest = (*newest).max(t);
            state.source_arrivals.insert(source.to_string(), arrived);
        }
        let mut accepted = 0u64;
        let single = groups.len() == 1;
        for ((version, variant, start), rows) in groups {
            let n = rows.len() as u64;
            accepted += n;
            let part = if single && rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                let idx = UInt32Array::from(rows);
                let cols: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|c| take(c.as_ref(), &idx, None))
                    .collect::<Result<_, _>>()
                    .map_err(|e| AnalyzerError::Query(e.to_string()))?;
                RecordBatch::try_new(batch.schema(), cols)
                    .map_err(|e| AnalyzerError::Query(e.to_string()))?
            };
            let key = SeriesKey::new(model, version, variant);
            let w = self.open.entry((key, start)).or_default();
            w.rows += n;
            if w.retained + n <= max_events {
                w.retained += n;
                w.batches.push(part);
            }
        }
        Ok(Absorbed {
            accepted,
            late,
            future,
            too_old,
        })
    }

    /// Restarts every model's idle clock at `now`: time during which no source could deliver
    /// (a Kafka source with no partitions assigned, e.g. while a restarted consumer waits for its
    /// group to rebalance) is not idleness, and closing a window then would turn the events still
    /// to come into late ones.
    pub fn hold_idle(&mut self, now: Instant) {
        for m in self.models.values_mut() {
            m.last_arrival = m.last_arrival.max(now);
            for t in m.source_arrivals.values_mut() {
                *t = (*t).max(now);
            }
        }
    }

    /// The windows whose end the watermark has passed (or whose model has been idle), removed from
    /// the open set, oldest first. Call [`Windows::finish`] on each.
    pub fn due(&mut self, now: Instant) -> Vec<(SeriesKey, i64, OpenWindow)> {
        let size = self.size_ms();
        let lateness = self.settings.allowed_lateness.as_millis() as i64;
        let idle = self.settings.idle_close_after;
        let mut watermarks: HashMap<String, i64> = HashMap::new();
        for (name, m) in &self.models {
            let idle_now = now.duration_since(m.last_arrival) >= idle;
            if idle_now && self.open.keys().any(|(k, _)| &k.model == name) {
                tracing::debug!(model = %name, idle = ?now.duration_since(m.last_arrival), "model idle: closing its open windows");
            }
            let wm = if idle_now {
                i64::MAX
            } else {
                source_watermark(m, now, idle, &self.settings).map_or(i64::MIN, |t| t - lateness)
            };
            watermarks.insert(name.clone(), wm);
        }
        let due_keys: Vec<(SeriesKey, i64)> = self
            .open
            .keys()
            .filter(|(k, start)| {
                watermarks
                    .get(&k.model)
                    .is_some_and(|wm| start + size <= *wm)
            })
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(due_keys.len());
        for key in due_keys {
            if let Some(w) = self.open.remove(&key) {
                let end = key.1 + size;
                if let Some(m) = self.models.get_mut(&key.0.model) {
                    m.clock.closed_until_ms =
                        Some(m.clock.closed_until_ms.map_or(end, |c| c.max(end)));
                }
                out.push((key.0, key.1, w));
            }
        }
        out.sort_by_key(|(_, start, _)| *start);
        out
    }

    /// Computes the report of a closed window: one typed pass over its batches
    /// ([`WindowStats`]) for the counts, latency and confidence, missing ratios and drift, then
    /// the user's own SQL metrics (each planned once per model and schema).
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] when a numeric feature's column holds text (a custom metric's SQL
    /// error is reported in the metric as `None` and logged, not as an error).
    pub async fn finish(
        &mut self,
        key: SeriesKey,
        start: i64,
        window: OpenWindow,
    ) -> Result<ClosedWindow, AnalyzerError> {
        let size = self.size_ms();
        let custom = self.settings.custom_metrics.clone();
        let state = self.model(&key.model);
        let features = state.features.clone();
        let profiles = state.profiles.clone();
        let ctx = state.ctx.clone();
        let to_utc = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let report = WindowReport {
            key: key.clone(),
            start: to_utc(start),
            end: to_utc(start + size),
            requests: window.rows,
            latency_seconds: Quantiles::default(),
            confidence: Quantiles::default(),
            missing_ratio: BTreeMap::new(),
            drift: Vec::new(),
            custom: BTreeMap::new(),
            sampled: window.retained < window.rows,
        };
        let mut closed = ClosedWindow {
            report,
            latencies_s: Vec::new(),
            confidences: Vec::new(),
        };
        if window.batches.is_empty() {
            return Ok(closed);
        }
        let stats = WindowStats::of(&window.batches, &features, &profiles)?;
        closed.report.latency_seconds = quantiles(&stats.latencies_s);
        closed.report.confidence = quantiles(&stats.confidences);
        for (feature, present, drift) in stats.features {
            if stats.rows > 0 {
                closed
                    .report
                    .missing_ratio
                    .insert(feature, 1.0 - present as f64 / stats.rows as f64);
            }
            closed.report.drift.push(drift);
        }
        closed.latencies_s = stats.latencies_s;
        closed.confidences = stats.confidences;
        for metric in &custom {
            let value = match self
                .custom_metric(&key.model, &ctx, metric, &window.batches)
                .await
            {
                Ok(rows) => first_value(&rows),
                Err(e) => {
                    tracing::warn!(metric = %metric.name, error = %e, "custom window metric failed");
                    None
                }
            };
            closed.report.custom.insert(metric.name.clone(), value);
        }
        Ok(closed)
    }

    /// Runs a custom metric's SQL over a window's batches (table `events`), from a plan kept per
    /// model and metric ([`sql::PreparedQuery`]); planned again when the batches' schema differs,
    /// and run unprepared when the plan cannot be kept.
    async fn custom_metric(
        &mut self,
        model: &str,
        ctx: &SessionContext,
        metric: &CustomMetric,
        batches: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, AnalyzerError> {
        let state = self.model(model);
        let kept = state
            .custom_queries
            .remove(&metric.name)
            .filter(|q| q.is_for(batches, &metric.sql));
        let prepared = match kept {
            Some(q) => Some(q),
            None => sql::PreparedQuery::new(ctx, "events", batches.to_vec(), &metric.sql)
                .await
                .inspect_err(|e| {
                    tracing::debug!(model, metric = %metric.name, error = %e, "custom metric not prepared; planned at every close");
                })
                .ok(),
        };
        let rows = match &prepared {
            Some(q) => q.run(ctx, batches.to_vec()).await,
            None => sql::query(ctx, "events", batches.to_vec(), &metric.sql).await,
        };
        if let Some(q) = prepared {
            self.model(model)
                .custom_queries
                .insert(metric.name.clone(), q);
        }
        rows
    }

    /// Every open window (for checkpoints), in key order.
    pub fn open_windows(&mut self) -> impl Iterator<Item = (&(SeriesKey, i64), &mut OpenWindow)> {
        self.open.iter_mut()
    }

    /// Number of open windows.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Per-model clocks (for checkpoints).
    pub fn clocks(&self) -> BTreeMap<String, ModelClock> {
        self.models
            .iter()
            .map(|(k, m)| (k.clone(), m.clock.clone()))
            .collect()
    }

    /// Late events per model so far.
    pub fn late_events(&self) -> BTreeMap<String, u64> {
        self.models
            .iter()
            .map(|(k, m)| (k.clone(), m.clock.late_events))
            .collect()
    }

    /// Restores a window and the model clocks from a checkpoint.
    pub fn restore(
        &mut self,
        clocks: BTreeMap<String, ModelClock>,
        windows: Vec<(SeriesKey, i64, OpenWindow)>,
    ) {
        let now = Instant::now();
        for (model, clock) in clocks {
            let state = self.model(&model);
            // Restored sources count as having delivered now, so that one that never returns
            // stops holding the watermark after `idle_close_after`.
            state.source_arrivals = clock.sources.keys().map(|s| (s.clone(), now)).collect();
            state.clock = clock;
        }
        for (key, start, w) in windows {
            self.model(&key.model);
            self.open.insert((key, start), w);
        }
    }
}

/// The event time a model's watermark follows (before `allowed_lateness`): the smallest newest-
/// event time over its sources that delivered within `idle_close_after` and lie within
/// `max_source_lag` of the most advanced source; the model's newest event time when no source
/// qualifies (or none is known). With one source this is its newest event time, as before
/// sources were told apart.
fn source_watermark(
    m: &ModelState,
    now: Instant,
    idle: Duration,
    settings: &WindowSettings,
) -> Option<i64> {
    let leader = m.clock.max_event_ms?;
    let lag = i64::try_from(settings.max_source_lag.as_millis()).unwrap_or(i64::MAX);
    m.clock
        .sources
        .iter()
        .filter(|(source, _)| {
            m.source_arrivals
                .get(*source)
                .is_none_or(|t| now.saturating_duration_since(*t) < idle)
        })
        .map(|(_, &t)| t)
        .filter(|&t| leader.saturating_sub(t) <= lag)
        .min()
        .or(Some(leader))
}

/// Row `i`'s text in column `name` (empty where null); `None` without a text column.
fn text_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Option<Box<dyn Fn(usize) -> &'a str + 'a>> {
    let col = batch.column_by_name(name)?;
    if col.data_type() != &DataType::Utf8 {
        return None;
    }
    let s = col.as_string::<i32>();
    Some(Box::new(
        move |i| if s.is_valid(i) { s.value(i) } else { "" },
    ))
}

fn first_value(rows: &[RecordBatch]) -> Option<f64> {
    let batch = rows.iter().find(|b| b.num_rows() > 0)?;
    let column = batch.columns().first()?;
    let floats = datafusion::arrow::compute::cast(column, &DataType::Float64).ok()?;
    let floats = floats.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    floats
        .is_valid(0)
        .then(|| floats.value(0))
        .filter(|v| v.is_finite())
}
