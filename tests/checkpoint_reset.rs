//! Issue "One spine", item 7: `serve` refuses to start from a checkpoint whose source offsets
//! cannot be read (before, they were restored with `unwrap_or_default()`, so every partition
//! silently resumed from the committed offset and events were counted twice), naming the file and
//! the fix; with `--reset-checkpoint` it sets the checkpoint aside, says so, and starts.

mod support;

use std::process::Command;

use support::*;

/// A checkpoint manifest as `serve` writes it, with a partition key that is not
/// `topic/partition`.
const GARBLED_MANIFEST: &str = r#"{"format":"driftwatch.checkpoint","version":1,
"written_at":"2026-12-07T12:00:00Z",
"offsets":{"partitions":{"predictions-0":{"watermark":1842}}},
"clocks":{},"windows":[],"history":[]}"#;

#[test]
fn garbled_checkpoint_offsets_stop_serve_until_reset() {
    let dir = tempfile::tempdir().unwrap();
    let profile = car_loan_profile(dir.path());
    let checkpoint = dir.path().join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    let manifest = checkpoint.join("manifest.json");
    std::fs::write(&manifest, GARBLED_MANIFEST).unwrap();
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\
         [[models]]\nname = \"car-loan\"\nprofile = \"{}\"\n\
         [checkpoint]\ndir = \"{}\"\n",
        profile.display(),
        checkpoint.display()
    );
    let cfg = dir.path().join("refused.toml");
    std::fs::write(&cfg, &config).unwrap();

    let refused = Command::new(driftwatch_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&manifest.display().to_string()),
        "the error names the manifest: {stderr}"
    );
    assert!(
        stderr.contains("`predictions-0` is not `topic/partition`"),
        "{stderr}"
    );
    assert!(stderr.contains("--reset-checkpoint"), "{stderr}");
    assert!(
        manifest.exists(),
        "a refused start leaves the checkpoint as it was"
    );

    let mut reset = serve_with(dir.path(), &config, port, &["--reset-checkpoint"]);
    let health = get_text(&format!("{}/healthz", reset.url()));
    assert!(health.is_some(), "serve answers /healthz after the reset");
    reset.terminate();
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("--reset-checkpoint: the checkpoint is unreadable and was set aside"),
        "{log}"
    );
    let aside: Vec<String> = std::fs::read_dir(&checkpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("manifest.json.discarded-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(checkpoint.join(&aside[0])).unwrap(),
        GARBLED_MANIFEST
    );
}
