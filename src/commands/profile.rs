//! `driftwatch profile`: fit a reference profile and save it.

use std::collections::BTreeSet;
use std::process::ExitCode;

use analyzer::{DriftSettings, ReferenceProfile, calibrate};

use crate::cli::{GlobalArgs, ProfileArgs};
use crate::commands::{profile_options, read_data, select_features};
use crate::progress::Bar;

/// Runs `driftwatch profile`.
pub fn run(args: &ProfileArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let options = profile_options(&args.features)?;
    let text: BTreeSet<String> = args.features.categorical.iter().cloned().collect();
    let table = read_data(&args.input, text, global.quiet)?;
    let features = select_features(&args.features, &[&table], &[], &[])?;
    let mut profile = ReferenceProfile::fit(&table, &features, &options)?;
    for &size in &args.calibrate_chunk_size {
        let bar = Bar::new(global.quiet);
        let cal = calibrate(
            &profile,
            &features,
            &table,
            size,
            &DriftSettings::default(),
            &bar,
        )?;
        profile.calibrations.push(cal);
    }
    profile.save(&args.out)?;
    eprintln!(
        "wrote {}: {} features from {} rows of {} ({})",
        args.out.display(),
        profile.features.len(),
        profile.rows,
        args.input.display(),
        profile
            .features
            .iter()
            .map(|f| format!("{} {}", f.name(), f.kind()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
