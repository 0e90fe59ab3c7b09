//! The command bodies of the `poortwachter` binary: one module per
//! command group. Flags are English with the Dutch name as an alias
//! (`--pupil`/`--leerling`, `--org`/`--organisatie`, `--role`/`--rol`, ...);
//! operator output is English, the FG's and parents' documents are Dutch.

pub mod audit;
pub mod cases;
pub mod policy;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "poortwachter",
    version,
    about = "Privacy-covenant-aware data-sharing gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--format text|json`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway with a configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the embedded demo: dev certificates, demo bronnen, SQLite audit.
    Demo(serve::DemoArgs),
    /// Certificates.
    Certs {
        #[command(subcommand)]
        cmd: serve::CertsCmd,
    },
    /// Policy administration.
    Policy {
        #[command(subcommand)]
        cmd: policy::PolicyCmd,
    },
    /// The audit trail: verify, search, export, inzage, report, purge, keys.
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCmd,
    },
    /// Case binding: register (aanmelden) pupils in a casusoverleg, end, list.
    Cases {
        #[command(subcommand)]
        cmd: cases::CasesCmd,
    },
    /// The consent register: record and withdraw toestemming.
    Consent {
        #[command(subcommand)]
        cmd: cases::ConsentCmd,
    },
}

impl Cli {
    /// Runs the command; `Err` is "could not run" (exit 2).
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.cmd {
            Cmd::Serve { config } => serve::serve(&config).await,
            Cmd::Demo(args) => serve::demo(args).await,
            Cmd::Certs { cmd } => serve::certs(cmd),
            Cmd::Policy { cmd } => policy::run(cmd).await,
            Cmd::Audit { cmd } => audit::run(cmd).await,
            Cmd::Cases { cmd } => cases::cases(cmd).await,
            Cmd::Consent { cmd } => cases::consent(cmd).await,
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// [`out`] with a line end.
pub fn outln(text: &str) -> anyhow::Result<()> {
    out(text)?;
    out("\n")
}

/// Pretty JSON on stdout.
pub fn out_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    outln(&serde_json::to_string_pretty(v)?)
}

/// Exit 0 when `ok`, else 1 (a finding, a denial, a failed case).
pub fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
