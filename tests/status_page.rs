//! The status page in headless Chromium (Debian's `chromium`): after the car_loan reference
//! period nothing is shown as drifting; after the analysis period the four drifted features are
//! (in the rendered DOM and, in drift red, on the screenshot).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// The page's colour for drift (`.drifting` text and drifted sparkline bars), `#d62728`.
const DRIFT_RED: [u8; 3] = [0xd6, 0x27, 0x28];

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("DRIFTWATCH_CHROMIUM_BIN") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "chromium not found (set DRIFTWATCH_CHROMIUM_BIN); install it with: apt-get install -y \
         chromium (scripts/install-test-services.sh does)"
    );
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=...`); its stdout.
fn headless(dir: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Features the rendered page marks as drifting (`<tr data-feature=F data-status="drifting">`).
fn drifting_in_dom(dom: &str) -> BTreeSet<String> {
    dom.split("<tr ")
        .filter(|row| row.contains("data-status=\"drifting\""))
        .filter_map(|row| {
            let rest = row.split("data-feature=\"").nth(1)?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect()
}

/// Pixels of the screenshot at `path` in drift red.
fn drift_red_pixels(path: &Path) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| px[..3] == DRIFT_RED)
        .count()
}

fn closed_windows(dw: &Service) -> usize {
    get_json(&format!("{}/api/windows", dw.url()))
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn status_page_shows_exactly_the_drifted_features_as_drifting() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let profile = car_loan_profile(dir.path());
    let dw = serve(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [[models]]\nname = \"car-loan\"\nprofile = \"{}\"\n\
             [windows]\nsize = \"10m\"\nmax_future_skew = \"1d\"\nallowed_lateness = \"0s\"\nidle_close_after = \"2s\"\n",
            profile.display()
        ),
        port,
    );
    let url = format!("{}/", dw.url());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    // The reference period: ten clean windows.
    let t0 = next_window_start();
    replay_car_loan("reference.csv", &dw.url(), t0, 0, None);
    eventually("10 windows closed", Duration::from_secs(120), || {
        (closed_windows(&dw) >= 10).then_some(())
    });
    let dom = headless(dir.path(), &url, &["--dump-dom"]);
    assert!(dom.contains("data-feature=\"car_value\""), "{dom}");
    assert_eq!(drifting_in_dom(&dom), BTreeSet::new());
    let clean = shots.join("status-page-reference.png");
    headless(
        dir.path(),
        &url,
        &[&format!("--screenshot={}", clean.display())],
    );
    assert_eq!(drift_red_pixels(&clean), 0, "see {}", clean.display());

    // The analysis period: drift in chunks 5 to 9 for four features.
    replay_car_loan("analysis.csv", &dw.url(), t0 + 10 * WINDOW_MS, 0, None);
    eventually("20 windows closed", Duration::from_secs(120), || {
        (closed_windows(&dw) >= 20).then_some(())
    });
    let dom = headless(dir.path(), &url, &["--dump-dom"]);
    let expected: BTreeSet<String> = DRIFTED.iter().map(ToString::to_string).collect();
    assert_eq!(drifting_in_dom(&dom), expected);
    let drifted = shots.join("status-page-analysis.png");
    headless(
        dir.path(),
        &url,
        &[&format!("--screenshot={}", drifted.display())],
    );
    // Four "drifting" labels and their red sparkline bars: far more than anti-aliasing noise.
    let red = drift_red_pixels(&drifted);
    assert!(
        red > 500,
        "{red} drift-red pixels; see {}",
        drifted.display()
    );
    drop(dw);
}
