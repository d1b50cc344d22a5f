//! `driftwatch`: the command-line entry point. This file only wires the subcommands to the
//! library crates; each subcommand lives in `src/commands/`.

mod cli;
mod commands;
mod config;
mod output;
mod progress;
mod serve;
mod status;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: decoding an event makes and frees several small
/// strings (feature names, categories), and glibc's free of batches of them was a fifth of the
/// streaming pipeline's time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(&cli.global);
    let result = match cli.command {
        Command::Profile(args) => commands::profile::run(&args, &cli.global),
        Command::Analyze(args) => commands::analyze::run(&args, &cli.global),
        Command::Serve(args) => commands::serve::run(&args, &cli.global),
        Command::CheckConfig(args) => commands::serve::check(&args, &cli.global),
        Command::Replay(args) => commands::replay::run(&args, &cli.global),
        Command::Demo(args) => commands::demo::run(&args, &cli.global),
        Command::Controller(args) => commands::controller::run(&args, &cli.global),
        Command::Crdgen(args) => commands::controller::crdgen(&args, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
