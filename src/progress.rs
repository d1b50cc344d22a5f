//! Progress on stderr (indicatif). Bars draw only when stderr is a terminal and `--quiet` is off.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner for work of unknown length (reading a file).
#[derive(Debug)]
pub struct Spinner(ProgressBar);

impl Spinner {
    /// Starts a spinner with `message`.
    pub fn new(message: &str, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, target(quiet));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A bar that implements the analyzer's [`analyzer::batch::Progress`].
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar, hidden when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self(ProgressBar::with_draw_target(Some(0), target(quiet)))
    }
}

fn target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(8)
    }
}

impl analyzer::batch::Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.0.set_message(what.to_string());
    }

    fn advance(&self, units: u64) {
        self.0.inc(units);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl collector::replay::ReplayProgress for Bar {
    fn start(&self, total: u64) {
        analyzer::batch::Progress::start(self, "sending events", total);
    }

    fn sent(&self, n: u64) {
        self.0.inc(n);
    }
}
