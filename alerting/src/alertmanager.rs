//! A client for Alertmanager's v2 API (`POST /api/v2/alerts`), run as a tokio task fed by a
//! channel.
//!
//! # Delivery semantics (as Prometheus does)
//!
//! - A firing alert is posted when it fires, then re-sent every `resend_interval` (default 1m)
//!   with `endsAt = now + 4 * resend_interval`, so Alertmanager resolves it by itself if
//!   driftwatch disappears.
//! - A resolved alert is posted with `endsAt` = its resolution time until Alertmanager accepts it
//!   ONCE, then forgotten: it is never re-sent, neither as resolved nor as firing (edge case
//!   E20).
//! - When Alertmanager is down (connection error, timeout, 5xx, 429), the whole round stops and is
//!   retried after an exponential backoff (`initial_backoff`, doubled per failure, capped at
//!   `max_backoff`). Nothing is lost: the latest state of every alert is kept per fingerprint
//!   until delivered. Notifications coalesce: a resolved notification replaces a firing one of
//!   the same labels that was not delivered yet (Alertmanager then only ever sees it resolved).
//! - An alert Alertmanager rejects as invalid (another 4xx) is dropped and logged: retrying
//!   would never succeed. A batch rejected that way is re-posted alert by alert so one bad alert
//!   cannot hold back the others.
//! - Every alert posted counts once in `driftwatch_alerts_sent_total{status,outcome}`.
//!
//! Times: `startsAt`/`endsAt` of the rule engine are event times (window ends). The client clamps
//! them to the wall clock (`startsAt <= now`, resolved `endsAt <= now`), since Alertmanager would
//! keep an alert whose `endsAt` lies in the future active until then.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use telemetry::Emit;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::alertmanager_telemetry::{AlertmanagerMetrics, AlertsPosted, PostOutcome};
use crate::error::AlertingError;
use crate::trigger::{AlertStatus, fingerprint};

/// The Alertmanager client's settings (e.g. the `[alertmanager]` section of the configuration).
///
/// ```toml
/// [alertmanager]
/// url = "http://alertmanager.monitoring:9093"
/// resend_interval = "1m"
/// timeout = "10s"
/// initial_backoff = "500ms"
/// max_backoff = "30s"
/// queue_capacity = 1024
/// max_batch = 64
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL of Alertmanager, `http://host:port` (plain HTTP; alerts are posted to
    /// `<url>/api/v2/alerts`). Required.
    pub url: String,
    /// How often a firing alert is re-sent; its `endsAt` is set 4 intervals ahead. A duration;
    /// default `1m` (Prometheus' `--rules.alert.resend-delay`).
    #[serde(default = "default_resend", with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Timeout of one POST. A duration; default `10s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Wait before the first retry after a failed round; doubled per consecutive failure. A
    /// duration; default `500ms`.
    #[serde(default = "default_initial_backoff", with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Upper bound of the retry wait. A duration; default `30s`.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Capacity of the channel feeding the client task (notifications waiting to be merged into
    /// the queue; the queue itself holds one entry per alert and is not bounded by this).
    /// Default 1024.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Alerts per POST. Default 64 (Prometheus' batch size).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

fn default_resend() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_queue_capacity() -> usize {
    1024
}
fn default_max_batch() -> usize {
    64
}

impl AlertmanagerConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            resend_interval: default_resend(),
            timeout: default_timeout(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            queue_capacity: default_queue_capacity(),
            max_batch: default_max_batch(),
        }
    }

    fn validate(&self) -> Result<reqwest::Url, AlertingError> {
        let invalid = |m: String| AlertingError::InvalidClientConfig(m);
        let base = reqwest::Url::parse(&self.url)
            .map_err(|e| invalid(format!("`url` = `{}` is not a URL: {e}", self.url)))?;
        if base.scheme() != "http" {
            return Err(invalid(format!("`url` = `{}` must use http://", self.url)));
        }
        if self.resend_interval.is_zero() {
            return Err(invalid("`resend_interval` must be positive".to_string()));
        }
        if self.initial_backoff.is_zero() || self.max_backoff < self.initial_backoff {
            return Err(invalid(
                "`initial_backoff` must be positive and at most `max_backoff`".to_string(),
            ));
        }
        if self.queue_capacity == 0 || self.max_batch == 0 {
            return Err(invalid(
                "`queue_capacity` and `max_batch` must be positive".to_string(),
            ));
        }
        let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
        let mut url = base;
        url.set_path(&path);
        Ok(url)
    }
}

/// One alert state to deliver to Alertmanager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotification {
    /// The alert's labels (identity: [`fingerprint`] of them).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`).
    pub annotations: BTreeMap<String, String>,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved (resolved alerts only).
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to the source (`generatorURL`); left out when `None`.
    pub generator_url: Option<String>,
}

impl AlertNotification {
    /// [`fingerprint`] of the labels.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }

    /// The v2 API's `postableAlert` at wall-clock time `now`.
    fn postable(&self, now: DateTime<Utc>, resend: TimeDelta) -> PostableAlert<'_> {
        let (starts_at, ends_at) = match self.status {
            AlertStatus::Firing => (self.starts_at.min(now), now + resend * 4),
            AlertStatus::Resolved => {
                let ends = self.ends_at.unwrap_or(now).min(now);
                (self.starts_at.min(ends), ends)
            }
        };
        PostableAlert {
            labels: &self.labels,
            annotations: &self.annotations,
            starts_at,
            ends_at,
            generator_url: self.generator_url.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Alerts Alertmanager accepted during the flush.
    pub delivered: usize,
    /// Alerts Alertmanager rejected as invalid (dropped).
    pub rejected: usize,
    /// Alerts still waiting for a first successful delivery of their current state.
    pub undelivered: usize,
}

#[derive(Debug)]
enum Command {
    Notify(AlertNotification),
    Flush(oneshot::Sender<FlushReport>),
}

/// A handle to the client task. Cloning shares the task; the task ends (after a last delivery
/// attempt) when every handle is dropped.
#[derive(Debug, Clone)]
pub struct AlertmanagerHandle {
    tx: mpsc::Sender<Command>,
}

impl AlertmanagerHandle {
    /// Starts the client task. Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// [`AlertingError::InvalidClientConfig`] for a URL that is not `http://...` or a zero
    /// interval; [`AlertingError::HttpClient`] if the HTTP client cannot be built.
    pub fn spawn(
        config: &AlertmanagerConfig,
        metrics: AlertmanagerMetrics,
    ) -> Result<(Self, JoinHandle<()>), AlertingError> {
        let url = config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(AlertingError::HttpClient)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let task = ClientTask {
            http,
            url,
            metrics,
            outbox: Outbox::new(config),
            max_batch: config.max_batch,
        };
        let join = tokio::spawn(task.run(rx));
        Ok((Self { tx }, join))
    }

    /// Queues an alert state (waits while the channel is full).
    ///
    /// # Errors
    /// [`AlertingError::ClientStopped`] if the task has ended.
    pub async fn notify(&self, notification: AlertNotification) -> Result<(), AlertingError> {
        self.tx
            .send(Command::Notify(notification))
            .await
            .map_err(|_| AlertingError::ClientStopped)
    }

    /// Delivers everything queued now, ignoring the retry backoff (one attempt), and reports the
    /// outcome. Firing alerts already delivered within `resend_interval` are not re-sent.
    ///
    /// # Errors
    /// [`AlertingError::ClientStopped`] if the task has ended.
    pub async fn flush(&self) -> Result<FlushReport, AlertingError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(reply))
            .await
            .map_err(|_| AlertingError::ClientStopped)?;
        rx.await.map_err(|_| AlertingError::ClientStopped)
    }
}

/// The queue: the latest state per fingerprint, its last successful delivery, and the retry
/// schedule. Pure (times passed in) so that the cadence is unit-tested without a clock.
#[derive(Debug)]
struct Outbox {
    entries: BTreeMap<String, Entry>,
    resend: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    backoff: Duration,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    alert: AlertNotification,
    delivered_at: Option<Instant>,
}

impl Outbox {
    fn new(config: &AlertmanagerConfig) -> Self {
        Self {
            entries: BTreeMap::new(),
            resend: config.resend_interval,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            backoff: config.initial_backoff,
            retry_at: None,
        }
    }

    fn push(&mut self, alert: AlertNotification) {
        self.entries.insert(
            alert.fingerprint(),
            Entry {
                alert,
                delivered_at: None,
            },
        );
    }

    /// When an entry is due, ignoring the backoff; `None`: at once (not delivered yet). Only
    /// firing entries are ever delivered and kept (resolved ones are removed on delivery), so a
    /// delivered entry is due again one resend interval later.
    fn due_at(&self, e: &Entry) -> Option<Instant> {
        e.delivered_at.map(|t| t + self.resend)
    }

    /// The fingerprints to post at `now`. `force` ignores the backoff (flush).
    fn due(&self, now: Instant, force: bool) -> Vec<String> {
        if !force && self.retry_at.is_some_and(|r| now < r) {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|(_, e)| self.due_at(e).is_none_or(|t| t <= now))
            .map(|(fp, _)| fp.clone())
            .collect()
    }

    /// When the task should wake up next, if anything is queued.
    fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let earliest = self
            .entries
            .values()
            .map(|e| self.due_at(e).unwrap_or(now))
            .min()?;
        Some(self.retry_at.map_or(earliest, |r| earliest.max(r)))
    }

    fn undelivered(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.delivered_at.is_none())
            .count()
    }

    fn delivered(&mut self, fp: &str, now: Instant) {
        let resolved = self
            .entries
            .get(fp)
            .is_some_and(|e| e.alert.status == AlertStatus::Resolved);
        if resolved {
            self.entries.remove(fp);
        } else if let Some(e) = self.entries.get_mut(fp) {
            e.delivered_at = Some(now);
        }
        self.backoff = self.initial_backoff;
        self.retry_at = None;
    }

    fn rejected(&mut self, fp: &str) {
        self.entries.remove(fp);
    }

    fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }
}

/// Why a POST failed.
enum PostError {
    /// Alertmanager unreachable, slow or failing: retry the round later.
    Retry(String),
    /// Alertmanager rejected the request as invalid: retrying the same alerts cannot succeed.
    Rejected(String),
}

struct ClientTask {
    http: reqwest::Client,
    url: reqwest::Url,
    metrics: AlertmanagerMetrics,
    outbox: Outbox,
    max_batch: usize,
}

impl ClientTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let wake = self.outbox.next_wakeup(Instant::now());
            let sleep_until = wake.map(tokio::time::Instant::from_std);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command::Notify(n)) => self.outbox.push(n),
                    Some(Command::Flush(reply)) => {
                        let report = self.deliver(true).await;
                        // The caller may have given up waiting; nothing to do then.
                        let _ = reply.send(report);
                    }
                    None => {
                        let report = self.deliver(true).await;
                        if report.undelivered > 0 {
                            tracing::warn!(
                                undelivered = report.undelivered,
                                "Alertmanager client stopping with undelivered alerts"
                            );
                        }
                        return;
                    }
                },
                () = sleep(sleep_until), if sleep_until.is_some() => {
                    self.deliver(false).await;
                }
            }
        }
    }

    /// Posts every due alert in batches; stops the round at the first retryable failure.
    async fn deliver(&mut self, force: bool) -> FlushReport {
        let mut report = FlushReport::default();
        let due = self.outbox.due(Instant::now(), force);
        for batch in due.chunks(self.max_batch) {
            match self.post(batch).await {
                Ok(()) => self.accepted(batch, &mut report),
                Err(PostError::Retry(e)) => {
                    tracing::warn!(
                        error = %e,
                        alerts = batch.len(),
                        "cannot post alerts to Alertmanager; will retry"
                    );
                    self.count(batch, false);
                    self.outbox.failed(Instant::now());
                    break;
                }
                Err(PostError::Rejected(e)) if batch.len() > 1 => {
                    tracing::warn!(
                        error = %e,
                        "Alertmanager rejected a batch; posting its alerts one by one"
                    );
                    self.count(batch, false);
                    if self.post_each(batch, &mut report).await.is_err() {
                        break;
                    }
                }
                Err(PostError::Rejected(e)) => self.reject(&batch[0], &e, &mut report),
            }
        }
        report.undelivered = self.outbox.undelivered();
        report
    }

    async fn post_each(&mut self, batch: &[String], report: &mut FlushReport) -> Result<(), ()> {
        for fp in batch {
            let one = std::slice::from_ref(fp);
            match self.post(one).await {
                Ok(()) => self.accepted(one, report),
                Err(PostError::Rejected(e)) => self.reject(fp, &e, report),
                Err(PostError::Retry(e)) => {
                    tracing::warn!(error = %e, "cannot post alert to Alertmanager; will retry");
                    self.count(one, false);
                    self.outbox.failed(Instant::now());
                    return Err(());
                }
            }
        }
        Ok(())
    }

    fn accepted(&mut self, batch: &[String], report: &mut FlushReport) {
        self.count(batch, true);
        let now = Instant::now();
        for fp in batch {
            self.outbox.delivered(fp, now);
        }
        report.delivered += batch.len();
    }

    fn reject(&mut self, fp: &str, error: &str, report: &mut FlushReport) {
        let alertname = self
            .outbox
            .entries
            .get(fp)
            .and_then(|e| e.alert.labels.get("alertname").cloned());
        tracing::error!(
            error = %error,
            fingerprint = %fp,
            alertname = ?alertname,
            "Alertmanager rejected an alert; dropped"
        );
        self.count(std::slice::from_ref(&fp.to_string()), false);
        self.outbox.rejected(fp);
        report.rejected += 1;
    }

    fn count(&self, batch: &[String], ok: bool) {
        for status in [AlertStatus::Firing, AlertStatus::Resolved] {
            let n = batch
                .iter()
                .filter(|fp| {
                    self.outbox
                        .entries
                        .get(*fp)
                        .is_some_and(|e| e.alert.status == status)
                })
                .count();
            self.metrics.emit(AlertsPosted {
                status,
                outcome: if ok {
                    PostOutcome::Ok
                } else {
                    PostOutcome::Error
                },
                count: n as u64,
            });
        }
    }

    async fn post(&self, batch: &[String]) -> Result<(), PostError> {
        let now = Utc::now();
        let resend = TimeDelta::from_std(self.outbox.resend).unwrap_or(TimeDelta::MAX / 8);
        let alerts: Vec<PostableAlert<'_>> = batch
            .iter()
            .filter_map(|fp| self.outbox.entries.get(fp))
            .map(|e| e.alert.postable(now, resend))
            .collect();
        let res = self
            .http
            .post(self.url.clone())
            .json(&alerts)
            .send()
            .await
            .map_err(|e| PostError::Retry(format!("POST {}: {e}", self.url)))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let body = res.text().await.unwrap_or_default();
        let body: String = body.chars().take(512).collect();
        let msg = format!("POST {} answered {status}: {body}", self.url);
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(PostError::Retry(msg))
        } else {
            Err(PostError::Rejected(msg))
        }
    }
}

async fn sleep(until: Option<tokio::time::Instant>) {
    if let Some(t) = until {
        tokio::time::sleep_until(t).await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn alert(status: AlertStatus, name: &str) -> AlertNotification {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        AlertNotification {
            labels: BTreeMap::from([("alertname".to_string(), name.to_string())]),
            annotations: BTreeMap::new(),
            status,
            starts_at: t0,
            ends_at: (status == AlertStatus::Resolved).then(|| t0 + TimeDelta::minutes(20)),
            generator_url: None,
        }
    }

    fn outbox() -> Outbox {
        let mut c = AlertmanagerConfig::new("http://127.0.0.1:9093");
        c.initial_backoff = Duration::from_secs(1);
        c.max_backoff = Duration::from_secs(5);
        Outbox::new(&c)
    }

    #[test]
    fn firing_alerts_are_resent_every_interval_and_resolved_ones_once_e20() {
        let mut o = outbox();
        let t0 = Instant::now();
        let a = alert(AlertStatus::Firing, "A");
        let fp = a.fingerprint();
        o.push(a);
        assert_eq!(o.due(t0, false), vec![fp.clone()]);
        assert_eq!(o.next_wakeup(t0), Some(t0));
        o.delivered(&fp, t0);
        assert_eq!(o.undelivered(), 0);
        assert!(o.due(t0 + Duration::from_secs(59), false).is_empty());
        assert_eq!(o.next_wakeup(t0), Some(t0 + Duration::from_secs(60)));
        assert_eq!(o.due(t0 + Duration::from_secs(60), false), vec![fp.clone()]);
        o.delivered(&fp, t0 + Duration::from_secs(60));

        // The condition clears: the resolved state replaces the firing one.
        o.push(alert(AlertStatus::Resolved, "A"));
        let t1 = t0 + Duration::from_secs(70);
        assert_eq!(o.due(t1, false), vec![fp.clone()]);
        // Alertmanager is down: nothing is lost, the retry waits for the backoff.
        o.failed(t1);
        assert!(o.due(t1 + Duration::from_millis(999), false).is_empty());
        assert_eq!(
            o.due(t1 + Duration::from_millis(999), true),
            vec![fp.clone()]
        );
        assert_eq!(o.due(t1 + Duration::from_secs(1), false), vec![fp.clone()]);
        o.delivered(&fp, t1 + Duration::from_secs(1));
        // Delivered once: never sent again, neither resolved nor firing.
        assert!(o.entries.is_empty());
        assert!(o.due(t1 + Duration::from_secs(3600), true).is_empty());
        assert_eq!(o.next_wakeup(t1), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets_on_success() {
        let mut o = outbox();
        let t0 = Instant::now();
        let a = alert(AlertStatus::Firing, "A");
        let fp = a.fingerprint();
        o.push(a);
        let mut waits = Vec::new();
        for _ in 0..5 {
            o.failed(t0);
            waits.push(o.retry_at.map(|r| (r - t0).as_secs()));
        }
        assert_eq!(waits, vec![Some(1), Some(2), Some(4), Some(5), Some(5)]);
        assert_eq!(o.next_wakeup(t0), Some(t0 + Duration::from_secs(5)));
        o.delivered(&fp, t0);
        assert_eq!(o.retry_at, None);
        o.failed(t0);
        assert_eq!(o.retry_at, Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn postable_alert_times_follow_prometheus() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).single().unwrap();
        let resend = TimeDelta::minutes(1);
        let firing = alert(AlertStatus::Firing, "A");
        let json = serde_json::to_value(firing.postable(now, resend)).unwrap();
        assert_eq!(json["startsAt"], "2026-01-01T00:00:00Z");
        assert_eq!(json["endsAt"], "2026-01-01T01:04:00Z");
        assert_eq!(json["labels"]["alertname"], "A");
        assert!(json.get("generatorURL").is_none());
        let resolved = alert(AlertStatus::Resolved, "A");
        let json = serde_json::to_value(resolved.postable(now, resend)).unwrap();
        assert_eq!(json["endsAt"], "2026-01-01T00:20:00Z");
        // An event time ahead of the wall clock is clamped to now.
        let early = Utc.with_ymd_and_hms(2026, 1, 1, 0, 10, 0).single().unwrap();
        let json = serde_json::to_value(resolved.postable(early, resend)).unwrap();
        assert_eq!(json["startsAt"], "2026-01-01T00:00:00Z");
        assert_eq!(json["endsAt"], "2026-01-01T00:10:00Z");
    }

    #[test]
    fn config_rejects_non_http_urls_and_builds_the_endpoint() {
        let url = AlertmanagerConfig::new("http://am:9093/prefix/")
            .validate()
            .unwrap();
        assert_eq!(url.as_str(), "http://am:9093/prefix/api/v2/alerts");
        let err = AlertmanagerConfig::new("https://am:9093")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("must use http://"), "{err}");
        let parsed: AlertmanagerConfig = serde_json::from_value(
            serde_json::json!({"url": "http://am:9093", "resend_interval": "2m"}),
        )
        .unwrap();
        assert_eq!(parsed.resend_interval, Duration::from_secs(120));
        assert_eq!(parsed.max_backoff, Duration::from_secs(30));
    }
}
