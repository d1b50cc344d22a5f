//! Real services for end-to-end tests: Prometheus, Alertmanager and `driftwatch serve`, each on
//! free loopback ports, each killed on drop. The Kafka-protocol broker (tansu) and the mock
//! Kubernetes API server come from `test_support` (`tansu::Broker`, `kube_mock::KubeMock`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::car_loan;
#[allow(unused_imports)]
pub use test_support::free_port;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed on drop.
pub struct Service {
    pub name: &'static str,
    pub child: Child,
    pub port: u16,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 60 s of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(name: &str, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status} before listening on port {port}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn binary(env: &str, names: &[&str], install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    for n in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found (set {env}); install it with: {install} (scripts/test.sh does)",
        names[0]
    );
}

/// Starts Prometheus with `config` (YAML text) in `dir`.
pub fn prometheus(dir: &Path, config: &str, port: u16) -> Service {
    let bin = binary(
        "DRIFTWATCH_PROMETHEUS_BIN",
        &["prometheus"],
        "apt-get install -y prometheus",
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port("prometheus", port, &mut child);
    Service {
        name: "prometheus",
        child,
        port,
    }
}

/// Starts Alertmanager with `config` (YAML text) in `dir`, gossip off.
pub fn alertmanager(dir: &Path, config: &str, port: u16) -> Service {
    let bin = binary(
        "DRIFTWATCH_ALERTMANAGER_BIN",
        &["prometheus-alertmanager", "alertmanager"],
        "apt-get install -y prometheus-alertmanager",
    );
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port("alertmanager", port, &mut child);
    Service {
        name: "alertmanager",
        child,
        port,
    }
}

/// The driftwatch binary under test.
pub fn driftwatch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_driftwatch"))
}

/// Starts `driftwatch serve --config <file>`; logs go to `dir/serve.log`.
pub fn serve(dir: &Path, config: &str, port: u16) -> Service {
    serve_with(dir, config, port, &[])
}

/// Starts `driftwatch serve --config <file> <extra>`; logs go to `dir/serve.log`.
pub fn serve_with(dir: &Path, config: &str, port: u16, extra: &[&str]) -> Service {
    let cfg = dir.join("driftwatch.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut child = Command::new(driftwatch_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(extra)
        .env(
            "DRIFTWATCH_LOG",
            "info,driftwatch::serve=debug,analyzer::stream=debug,collector::kafka=debug",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for_port("driftwatch serve", port, &mut child);
    Service {
        name: "driftwatch",
        child,
        port,
    }
}

/// Fits the car_loan reference profile into `dir` with `driftwatch profile`.
pub fn car_loan_profile(dir: &Path) -> PathBuf {
    let out = dir.join("car_loan.profile.json");
    let status = Command::new(driftwatch_bin())
        .args(["--quiet", "profile", "--input"])
        .arg(car_loan::path(car_loan::REFERENCE))
        .args(["--exclude", &car_loan::MANIFEST.label, "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "driftwatch profile failed");
    out
}

/// Runs `driftwatch replay` and asserts success.
pub fn replay(args: &[&str]) {
    let output = Command::new(driftwatch_bin())
        .arg("--quiet")
        .arg("replay")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "driftwatch replay {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// GET `url` as JSON.
pub fn get_json(url: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url} failed");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// GET `url` as text (None on HTTP error).
pub fn get_text(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[allow(unused_imports)]
pub use test_support::eventually_blocking as eventually;

/// The car_loan features (all, and those that drift in analysis chunks 5 to 9), from
/// `data/car_loan/manifest.toml`.
#[allow(unused_imports)]
pub use test_support::car_loan::{DRIFTED, FEATURES};

/// 5,000 car_loan log rows (one chunk, 2,615,760 s of log time) per 10-minute window: "4359.6".
pub static SPEEDUP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let m = &test_support::car_loan::MANIFEST;
    (m.chunk_rows as f64 * m.row_spacing_ms as f64 / WINDOW_MS as f64).to_string()
});

/// The window size the end-to-end tests configure (`windows.size = "10m"`). Their replays put one
/// chunk in each window, so event time runs up to 200 minutes ahead of the clock: they also set
/// `windows.max_future_skew = "1d"` (the default, 1 h, would refuse the later chunks).
pub const WINDOW_MS: i64 = 600_000;

/// The start of the next 10-minute window after now: the event time of a replay's first row.
pub fn next_window_start() -> i64 {
    (chrono::Utc::now().timestamp_millis() / WINDOW_MS + 1) * WINDOW_MS
}

/// `driftwatch replay` of car_loan `file` (`reference.csv` or `analysis.csv`) rows
/// `skip..skip+limit` (all with `None`) to `to` (`http://...` or `kafka://host:port/topic`) as
/// model `car-loan` v1: the first row at event time `start_ms`, then one chunk per window.
pub fn replay_car_loan(file: &str, to: &str, start_ms: i64, skip: usize, limit: Option<usize>) {
    replay_car_loan_with(file, to, start_ms, skip, limit, &[]);
}

/// [`replay_car_loan`] with `extra` arguments for `driftwatch replay`.
pub fn replay_car_loan_with(
    file: &str,
    to: &str,
    start_ms: i64,
    skip: usize,
    limit: Option<usize>,
    extra: &[&str],
) {
    let input = car_loan::path(car_loan::DIR)
        .join(file)
        .to_string_lossy()
        .to_string();
    let start = start_ms.to_string();
    let skip = skip.to_string();
    let limit = limit.map(|l| l.to_string());
    let mut args = vec![
        "--input",
        &input,
        "--model",
        "car-loan",
        "--model-version",
        "v1",
        "--to",
        to,
        "--exclude",
        &car_loan::MANIFEST.label,
        "--speedup",
        &SPEEDUP,
        "--no-wait",
        "--start-time",
        &start,
        "--skip",
        &skip,
        "--synthetic-latency-ms",
        "40",
    ];
    if let Some(l) = &limit {
        args.extend(["--limit", l.as_str()]);
    }
    args.extend(extra);
    replay(&args);
}

/// Starts Prometheus scraping driftwatch on `dw_port` every second and evaluating the
/// repository's `rules/` every second, with each `for` shortened from minutes to 2 s (Prometheus
/// evaluates on wall time; the replays compress a year into seconds), alerting to Alertmanager on
/// `am_port`.
pub fn prometheus_with_rules(dir: &Path, dw_port: u16, am_port: u16, port: u16) -> Service {
    prometheus_scraping(dir, &[("driftwatch", dw_port)], am_port, port)
}

/// As [`prometheus_with_rules`], scraping each `(job, port)` of `targets` on 127.0.0.1 (e.g. the
/// service and `driftwatch controller`).
pub fn prometheus_scraping(
    dir: &Path,
    targets: &[(&str, u16)],
    am_port: u16,
    port: u16,
) -> Service {
    let rules = std::fs::read_to_string(root().join("rules/driftwatch.rules.yaml")).unwrap();
    let rules = rules
        .replace("for: 10m", "for: 2s")
        .replace("for: 5m", "for: 2s")
        .replace("for: 15m", "for: 2s");
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let scrape = targets
        .iter()
        .map(|(job, p)| {
            format!("{{job_name: {job}, static_configs: [{{targets: ['127.0.0.1:{p}']}}]}}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    prometheus(
        dir,
        &format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [rules.yaml]\n\
             alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]}}\n\
             scrape_configs: [{scrape}]\n"
        ),
        port,
    )
}

/// The `feature` labels of the active `ModelDataDrift` alerts in Alertmanager.
pub fn alertmanager_drift_features(am: &Service) -> std::collections::BTreeSet<String> {
    get_json(&format!(
        "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
        am.url()
    ))
    .as_array()
    .unwrap()
    .iter()
    .filter(|a| a["labels"]["alertname"] == "ModelDataDrift")
    .filter_map(|a| a["labels"]["feature"].as_str().map(str::to_string))
    .collect()
}

/// The `feature` labels of the `ModelDataDrift` alerts Prometheus has firing.
pub fn prometheus_firing_drift_features(prom: &Service) -> std::collections::BTreeSet<String> {
    get_json(&format!("{}/api/v1/alerts", prom.url()))["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "ModelDataDrift" && a["state"] == "firing")
        .filter_map(|a| a["labels"]["feature"].as_str().map(str::to_string))
        .collect()
}

/// POSTs `body` to `/v1/events`: the status, or `None` when no answer came (the process died).
pub fn post(port: u16, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// The value of the one series PromQL `query` returns in Prometheus, if it returns one.
pub fn prometheus_value(prom: &Service, query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let answer = get_json(&format!("{}/api/v1/query?query={encoded}", prom.url()));
    let result = answer["data"]["result"].as_array()?;
    match result.as_slice() {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}
