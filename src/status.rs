//! The status page at `/`: models and variants, the latest windows with drift per feature (a
//! small server-rendered SVG chart per feature), active alerts and the controller's recent
//! decisions. Plain HTML, no JavaScript; it refreshes itself every 5 seconds.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use alerting::rules::{ActiveAlert, AlertState};
use analyzer::stream::{SeriesKey, WindowReport};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One decision of the controller (a retraining Job, a canary step), for the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Short kind, e.g. `retrain`, `canary`.
    pub kind: String,
    /// One-line summary.
    pub summary: String,
    /// The object it would apply (YAML), if any.
    pub detail: Option<String>,
}

/// Shared state behind the status page and `/api/*`.
#[derive(Debug, Clone, Default)]
pub struct StatusState {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    history: VecDeque<WindowReport>,
    capacity: usize,
    alerts: Vec<ActiveAlert>,
    decisions: VecDeque<Decision>,
}

impl StatusState {
    /// Keeps the last `capacity` window reports.
    pub fn new(capacity: usize, history: Vec<WindowReport>) -> Self {
        let mut inner = Inner {
            capacity: capacity.max(1),
            ..Inner::default()
        };
        for r in history {
            inner.push(r);
        }
        Self {
            inner: Arc::new(RwLock::new(inner)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a closed window (replacing an earlier report of the same window, e.g. re-closed
    /// after a restart).
    pub fn push_window(&self, report: WindowReport) {
        self.write().push(report);
    }

    /// The retained window reports, oldest first.
    pub fn history(&self) -> Vec<WindowReport> {
        self.read().history.iter().cloned().collect()
    }

    /// Replaces the active alerts.
    pub fn set_alerts(&self, alerts: Vec<ActiveAlert>) {
        self.write().alerts = alerts;
    }

    /// The active alerts.
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        self.read().alerts.clone()
    }

    /// Records a controller decision (the last 50 are kept).
    pub fn push_decision(&self, decision: Decision) {
        let mut inner = self.write();
        inner.decisions.push_back(decision);
        while inner.decisions.len() > 50 {
            inner.decisions.pop_front();
        }
    }

    /// The recent decisions, oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.read().decisions.iter().cloned().collect()
    }
}

impl Inner {
    fn push(&mut self, report: WindowReport) {
        if let Some(pos) = self
            .history
            .iter()
            .position(|r| r.key == report.key && r.start == report.start)
        {
            self.history[pos] = report;
            return;
        }
        self.history.push_back(report);
        while self.history.len() > self.capacity {
            self.history.pop_front();
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The worst verdict-method value of a feature in a window, and whether it drifted.
fn verdict_value(report: &WindowReport, feature: &str) -> Option<(f64, bool, f64)> {
    let d = report.drift.iter().find(|d| d.feature == feature)?;
    let m = d
        .methods
        .iter()
        .filter_map(|m| Some((m.value?, m.threshold.filter(|_| m.verdict_method)?.value)))
        .max_by(|(va, ta), (vb, tb)| {
            let ra = va / ta.max(f64::MIN_POSITIVE);
            let rb = vb / tb.max(f64::MIN_POSITIVE);
            ra.total_cmp(&rb)
        })?;
    Some((m.0, d.drift == Some(true), m.1))
}

/// A small bar chart of a feature's verdict value over the windows, with the threshold line.
fn sparkline(points: &[Option<(f64, bool, f64)>]) -> String {
    let (w, h) = (240.0, 40.0);
    let max = points
        .iter()
        .flatten()
        .map(|(v, _, t)| v.max(*t))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let n = points.len().max(1) as f64;
    let bw = w / n;
    let mut svg =
        format!("<svg class=\"spark\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">");
    let mut threshold = None;
    for (i, p) in points.iter().enumerate() {
        if let Some((v, drift, t)) = p {
            let bh = (v / max * h).max(1.0);
            let color = if *drift { "#d62728" } else { "#2ca02c" };
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{v:.4}</title></rect>",
                i as f64 * bw + 1.0,
                h - bh,
                (bw - 2.0).max(1.0),
                bh
            );
            threshold = Some(*t);
        }
    }
    if let Some(t) = threshold {
        let y = h - t / max * h;
        let _ = write!(
            svg,
            "<line x1=\"0\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#555\" stroke-dasharray=\"3,2\"/>"
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the page.
pub fn render(state: &StatusState, urls: &[(&str, String)]) -> String {
    let history = state.history();
    let alerts = state.alerts();
    let decisions = state.decisions();
    let mut by_series: BTreeMap<SeriesKey, Vec<&WindowReport>> = BTreeMap::new();
    for r in &history {
        by_series.entry(r.key.clone()).or_default().push(r);
    }
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>driftwatch</title><style>\
         body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{margin:0 0 .3em}\
         table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}\
         .drifting{color:#d62728;font-weight:bold}.ok{color:#2ca02c}.muted{color:#777}\
         .firing{color:#d62728;font-weight:bold}.pending{color:#e6a700}pre{background:#f6f6f6;padding:.5em;max-height:14em;overflow:auto}\
         </style></head><body><h1>driftwatch</h1>",
    );
    let _ = write!(
        html,
        "<p class=\"muted\">{} windows closed; {} active alerts.",
        history.len(),
        alerts.len()
    );
    for (name, url) in urls {
        let _ = write!(html, " <a href=\"{}\">{}</a>", esc(url), esc(name));
    }
    html.push_str("</p>");

    html.push_str("<h2>Models</h2>");
    if by_series.is_empty() {
        html.push_str("<p class=\"muted\">No window has closed yet.</p>");
    }
    for (key, windows) in &by_series {
        let latest = windows.last().copied();
        let _ = write!(
            html,
            "<h3>{} <span class=\"muted\">version {} · {}</span></h3>",
            esc(&key.model),
            esc(if key.version.is_empty() {
                "-"
            } else {
                &key.version
            }),
            esc(&key.variant)
        );
        if let Some(l) = latest {
            let _ = write!(
                html,
                "<p>Latest window {} to {}: {} requests, latency p95 {}, confidence median {}.</p>",
                l.start.format("%Y-%m-%d %H:%M:%S"),
                l.end.format("%H:%M:%S"),
                l.requests,
                l.latency_seconds
                    .p95
                    .map_or("-".into(), |s| format!("{:.1} ms", s * 1000.0)),
                l.confidence.p50.map_or("-".into(), |v| format!("{v:.3}"))
            );
        }
        let recent: Vec<&WindowReport> = windows.iter().rev().take(24).rev().copied().collect();
        let features: Vec<String> = latest
            .map(|l| l.drift.iter().map(|d| d.feature.clone()).collect())
            .unwrap_or_default();
        if !features.is_empty() {
            html.push_str("<table><tr><th>feature</th><th>status</th><th>value (verdict method)</th><th>threshold</th><th>last windows</th></tr>");
            for f in &features {
                let points: Vec<Option<(f64, bool, f64)>> =
                    recent.iter().map(|r| verdict_value(r, f)).collect();
                let last = latest.and_then(|l| l.drift.iter().find(|d| &d.feature == f));
                let (class, label) = match last.and_then(|d| d.drift) {
                    Some(true) => ("drifting", "drifting"),
                    Some(false) => ("ok", "ok"),
                    None => ("muted", "not judged"),
                };
                let (value, threshold) = match points.last().copied().flatten() {
                    Some((v, _, t)) => (format!("{v:.4}"), format!("{t}")),
                    None => ("-".into(), "-".into()),
                };
                let _ = write!(
                    html,
                    "<tr data-feature=\"{}\" data-status=\"{label}\"><td>{}</td><td class=\"{class}\">{label}</td><td>{value}</td><td>{threshold}</td><td>{}</td></tr>",
                    esc(f),
                    esc(f),
                    sparkline(&points)
                );
            }
            html.push_str("</table>");
        }
    }

    html.push_str("<h2>Active alerts</h2>");
    if alerts.is_empty() {
        html.push_str("<p class=\"muted\">None.</p>");
    } else {
        html.push_str("<table><tr><th>alert</th><th>state</th><th>model</th><th>feature</th><th>method</th><th>value</th><th>since</th></tr>");
        for a in &alerts {
            let get = |k: &str| esc(a.labels.get(k).map_or("", String::as_str));
            let (class, state) = match a.state {
                AlertState::Firing => ("firing", "firing"),
                AlertState::Pending => ("pending", "pending"),
            };
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                get("alertname"),
                get("model"),
                get("feature"),
                get("method"),
                a.value.map_or("-".into(), |v| format!("{v:.4}")),
                a.active_since.format("%Y-%m-%d %H:%M:%S")
            );
        }
        html.push_str("</table>");
    }

    html.push_str("<h2>Controller decisions</h2>");
    if decisions.is_empty() {
        html.push_str("<p class=\"muted\">None yet.</p>");
    }
    for d in decisions.iter().rev() {
        let _ = write!(
            html,
            "<p><b>{}</b> {} · {}</p>",
            esc(&d.kind),
            d.at.format("%H:%M:%S"),
            esc(&d.summary)
        );
        if let Some(detail) = &d.detail {
            let _ = write!(html, "<pre>{}</pre>", esc(detail));
        }
    }
    html.push_str("</body></html>");
    html
}
