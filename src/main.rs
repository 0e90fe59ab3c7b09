//! The `poortwachter` binary: a thin front over the library. It parses the
//! command line and runs the command (`cli/`); `serve` and `demo` start the
//! library's lifecycle (`poortwachter::lifecycle`).

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::Cli::parse().run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
