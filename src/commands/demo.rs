//! `driftwatch demo`: the whole loop on the built-in car_loan data, on localhost, with no Kafka and
//! no cluster.
//!
//! It fits the reference profile from the built-in reference log, starts the service (HTTP ingest,
//! `/metrics`, the alert engine, the status page) and replays the reference period and then the
//! analysis period through HTTP with compressed event time, so that each window holds one chunk of
//! 5,000 predictions. As windows close it prints the drift per feature; when `ModelDataDrift` fires
//! it prints the retraining Job the controller would create (dry run) and a canary decision; it
//! ends with a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use alerting::{AlertStatus, AlertTrigger};
use analyzer::{ProfileOptions, ReadOptions, ReferenceProfile};
use anyhow::Context;
use collector::replay::{self, ReplayOptions, Target};
use tokio::sync::mpsc;

use crate::cli::{DemoArgs, GlobalArgs};
use crate::config::{Config, ModelConfig};
use crate::serve::{self, Hooks};
use crate::status::Decision;

/// The built-in data's manifest (its features and sizes; the tests read it through
/// `test_support::car_loan`), in the binary so that the demo runs from any directory.
const CAR_LOAN_MANIFEST: &str = include_str!("../../data/car_loan/manifest.toml");

/// What the demo reads of `data/car_loan/manifest.toml`.
#[derive(Debug, serde::Deserialize)]
pub struct CarLoan {
    /// Rows of reference.csv.
    reference_rows: i64,
    /// Rows of analysis.csv.
    analysis_rows: i64,
    /// Rows per analysis chunk in the car_loan truth (and per demo window).
    chunk_rows: i64,
    /// Time between two predictions of the logs (8 min 43.152 s).
    row_spacing_ms: i64,
    /// The features, in column order (the other columns are the id, timestamp, label and model
    /// outputs).
    features: Vec<CarLoanFeature>,
}

/// One feature of the manifest (its kind and drift truth are for the tests).
#[derive(Debug, serde::Deserialize)]
struct CarLoanFeature {
    name: String,
}

/// The car_loan manifest, parsed once.
pub fn car_loan() -> anyhow::Result<&'static CarLoan> {
    static PARSED: LazyLock<Result<CarLoan, String>> =
        LazyLock::new(|| toml::from_str(CAR_LOAN_MANIFEST).map_err(|e| e.to_string()));
    PARSED
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the built-in data/car_loan/manifest.toml is not valid: {e}"))
}

impl CarLoan {
    /// The car_loan features, in column order.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }
}

/// The model name of the demo's events.
const MODEL: &str = "car-loan";

/// Where the built-in data lives: `--data`, else `data/car_loan` next to the binary's source
/// checkout (the crate root at build time), else `./data/car_loan`.
fn data_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match arg {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/car_loan"),
            PathBuf::from("data/car_loan"),
        ],
    };
    candidates
        .iter()
        .find(|d| d.join("reference.csv").exists() && d.join("analysis.csv").exists())
        .cloned()
        .with_context(|| {
            format!(
                "cannot find the built-in car_loan data (reference.csv and analysis.csv) in {}; pass --data DIR",
                candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(" or ")
            )
        })
}

/// Runs the demo.
pub fn run(args: &DemoArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let data = data_dir(args.data.as_deref())?;
    let car_loan = car_loan()?;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let profile_path = work.path().join("car_loan.profile.json");
    let features: Vec<String> = car_loan.features().map(str::to_string).collect();
    let reference = analyzer::read_table(&data.join("reference.csv"), &ReadOptions::default())?;
    let profile = ReferenceProfile::fit(&reference, &features, &ProfileOptions::default())?;
    profile.save(&profile_path)?;
    println!(
        "driftwatch demo: fitted the reference profile of `{MODEL}` from {} ({} rows, {} features)",
        data.join("reference.csv").display(),
        profile.rows,
        profile.features.len()
    );

    let window = Duration::from_millis(args.window_ms);
    let speedup =
        (car_loan.chunk_rows * car_loan.row_spacing_ms) as f64 / window.as_millis() as f64;
    let mut config = Config::default();
    config.server.listen = args.listen;
    config.models = vec![ModelConfig {
        name: MODEL.into(),
        profile: profile_path.clone(),
    }];
    config.windows.size = window;
    config.windows.allowed_lateness = Duration::ZERO;
    config.windows.idle_close_after = Duration::from_secs(3);
    // Every alert may fire on the first drifted window: the demo's windows are short.
    config.rules.builtin_for = BTreeMap::from([(
        alerting::rules::MODEL_DATA_DRIFT.to_string(),
        Duration::ZERO,
    )]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(demo(config, car_loan, &data, speedup, args))
}

/// What the demo saw, for the summary.
#[derive(Debug, Default)]
struct Seen {
    windows: usize,
    events: u64,
    drifted: BTreeMap<String, Vec<usize>>,
    first_drift_window: Option<usize>,
    firing: BTreeSet<String>,
}

/// What the demo's controller task hears about.
enum DemoEvent {
    /// A window closed: its requests and the largest verdict value over its features.
    Window { requests: u64, worst_drift: f64 },
    /// An alert trigger.
    Trigger(AlertTrigger),
}

async fn demo(
    config: Config,
    car_loan: &'static CarLoan,
    data: &Path,
    speedup: f64,
    args: &DemoArgs,
) -> anyhow::Result<ExitCode> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (trigger_tx, mut trigger_rx) = mpsc::channel::<AlertTrigger>(1024);
    let (event_tx, event_rx) = mpsc::unbounded_channel::<DemoEvent>();
    let forward = event_tx.clone();
    tokio::spawn(async move {
        while let Some(t) = trigger_rx.recv().await {
            if forward.send(DemoEvent::Trigger(t)).is_err() {
                break;
            }
        }
    });
    let printer = seen.clone();
    let phase_boundary = (car_loan.reference_rows / car_loan.chunk_rows) as usize;
    let hooks = Hooks {
        on_window: Some(Box::new(move |closed, transitions| {
            let mut s = printer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let index = s.windows;
            s.windows += 1;
            s.events += closed.report.requests;
            let (phase, chunk) = if index < phase_boundary {
                ("reference", index)
            } else {
                ("analysis", index - phase_boundary)
            };
            let drifting: Vec<&analyzer::FeatureDrift> = closed
                .report
                .drift
                .iter()
                .filter(|d| d.drift == Some(true))
                .collect();
            let worst_drift = closed
                .report
                .drift
                .iter()
                .flat_map(|d| {
                    d.methods
                        .iter()
                        .filter(|m| m.verdict_method)
                        .filter_map(|m| m.value)
                })
                .fold(0.0f64, f64::max);
            let _ = event_tx.send(DemoEvent::Window {
                requests: closed.report.requests,
                worst_drift,
            });
            let values: Vec<String> = closed
                .report
                .drift
                .iter()
                .map(|d| {
                    let v = d
                        .methods
                        .iter()
                        .filter(|m| m.verdict_method)
                        .filter_map(|m| m.value)
                        .fold(0.0f64, f64::max);
                    format!(
                        "{}={v:.3}{}",
                        d.feature,
                        if d.drift == Some(true) { "*" } else { "" }
                    )
                })
                .collect();
            println!(
                "window {index:>2} ({phase} chunk {chunk}): {} predictions, {} drifting: {}",
                closed.report.requests,
                drifting.len(),
                values.join(" ")
            );
            if phase == "analysis" {
                for d in &drifting {
                    s.drifted.entry(d.feature.clone()).or_default().push(chunk);
                }
                if !drifting.is_empty() && s.first_drift_window.is_none() {
                    s.first_drift_window = Some(chunk);
                }
            }
            for t in transitions {
                let label = |k: &str| t.trigger.labels.get(k).cloned().unwrap_or_default();
                match t.trigger.status {
                    AlertStatus::Firing => {
                        println!(
                            "  ALERT {} firing: feature {} ({})",
                            t.trigger.alertname,
                            label("feature"),
                            label("method")
                        );
                        s.firing.insert(label("feature"));
                    }
                    AlertStatus::Resolved => println!(
                        "  alert {} resolved: feature {}",
                        t.trigger.alertname,
                        label("feature")
                    ),
                }
            }
        })),
        triggers: Some(trigger_tx),
        reset_checkpoint: false,
    };
    let running = serve::start(config, hooks).await?;
    let base = format!("http://{}", running.addr);
    println!(
        "serving on {base}: status page {base}/ , metrics {base}/metrics , windows {base}/api/windows"
    );
    let status = running.status.clone();
    let controller = tokio::spawn(controller_dry_run(event_rx, status.clone()));

    // Reference period, then analysis period, one window per chunk of 5,000 predictions.
    let target = Target::Http {
        url: format!("{base}/v1/events"),
    };
    let window_ms = args.window_ms as i64;
    let start = (chrono::Utc::now().timestamp_millis() / window_ms + 1) * window_ms;
    for (i, file) in ["reference.csv", "analysis.csv"].iter().enumerate() {
        let mut options = ReplayOptions::new(data.join(file), MODEL);
        options.model_version = Some("v1".into());
        options.features = car_loan.features().map(str::to_string).collect();
        options.synthetic_latency_ms = Some(40.0);
        options.speedup = Some(speedup);
        options.no_wait = args.fast;
        let offset = i as i64 * car_loan.reference_rows / car_loan.chunk_rows * window_ms;
        let events = replay::events_from_file(&options, start + offset)?;
        println!(
            "replaying {} ({} predictions) with event time compressed {speedup:.0}x",
            data.join(file).display(),
            events.len()
        );
        options.no_wait = true;
        let pace = if args.fast {
            None
        } else {
            Some(car_loan.chunk_rows as f64 * 1000.0 / args.window_ms as f64)
        };
        options.rate = pace;
        replay::send(events, &target, &options, &replay::Quiet).await?;
    }
    // Let the last windows close (idle close), then stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let total = (car_loan.reference_rows + car_loan.analysis_rows) as u64;
    while seen.lock().map(|s| s.events).unwrap_or(0) < total
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.stop().await?;
    let decisions = controller.await.unwrap_or_default();

    let s = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("\nsummary: {} windows, {} predictions", s.windows, s.events);
    for f in car_loan.features() {
        match s.drifted.get(f) {
            Some(chunks) => println!("  {f:<24} drifted in analysis chunks {chunks:?}"),
            None => println!("  {f:<24} no drift"),
        }
    }
    if let Some(w) = s.first_drift_window {
        println!(
            "  drift begins at analysis chunk {w}; ModelDataDrift fired for: {}",
            s.firing.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "  controller (dry run): {decisions} decision(s); see above for the Job and the canary step"
    );
    Ok(ExitCode::SUCCESS)
}

/// Acts like the controller in dry-run mode: the first drift episode of the model yields one
/// retraining Job (printed as YAML); each window feeds the canary analysis of a v2 canary (10% of
/// the traffic, same latency) whose drift check fails once the data drifts.
async fn controller_dry_run(
    mut rx: mpsc::UnboundedReceiver<DemoEvent>,
    status: crate::status::StatusState,
) -> usize {
    let mut decisions = 0;
    let mut planner = crate::commands::controller::DryRunPlanner::demo(MODEL);
    while let Some(event) = rx.recv().await {
        let new = match event {
            DemoEvent::Trigger(t) => planner.on_trigger(&t),
            DemoEvent::Window {
                requests,
                worst_drift,
            } => {
                planner.measure(requests / 10, 1.0, worst_drift);
                planner.plan()
            }
        };
        for d in new {
            decisions += 1;
            println!("  CONTROLLER {}: {}", d.kind, d.summary);
            if let Some(detail) = &d.detail {
                for line in detail.lines() {
                    println!("    {line}");
                }
            }
            status.push_decision(Decision {
                at: chrono::Utc::now(),
                ..d
            });
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_manifest_parses() {
        let m = car_loan().unwrap();
        assert_eq!(m.features().count(), 7);
        assert_eq!(m.reference_rows % m.chunk_rows, 0);
        assert_eq!(m.analysis_rows % m.chunk_rows, 0);
    }
}
