//! Parse → dispatch → render → exit code.

use std::io::{IsTerminal, Write};

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::{Error, Exit, Result};
use crate::report::{self, Format, Report, ReportKind};

pub fn run() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Verified
            };
        }
    };
    init_logging(cli.global.verbose);
    // kube and the AWS SDK both use rustls; choose its crypto once so feature unification
    // (ring and aws-lc-rs both present) can never leave the choice ambiguous.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match execute(&cli) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit()
        }
    }
}

fn init_logging(verbose: u8) {
    // Only our own crate and kube's request lines: SDK wire logs could carry credentials.
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // Other crates stay silent: SDK warnings can quote raw responses.
    let filter = format!(
        "off,podiam={level},kube_client={}",
        if verbose >= 2 { "debug" } else { "off" }
    );
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

fn execute(cli: &Cli) -> Result<Exit> {
    let (kind, items) = match &cli.command {
        Command::Version => {
            println!("kubectl-podiam {}", env!("CARGO_PKG_VERSION"));
            return Ok(Exit::Verified);
        }
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "kubectl-podiam", &mut std::io::stdout());
            return Ok(Exit::Verified);
        }
        Command::Whoami(args) => {
            if cli.global.output == Format::Junit {
                return Err(Error::Usage("-o junit is for verify".into()));
            }
            (
                ReportKind::WhoamiReport,
                block_on(crate::commands::whoami::run(&cli.global, args))?,
            )
        }
        Command::Bind(args) => {
            let report = block_on(crate::commands::bind::run(&cli.global, args))?;
            let rendered = match cli.global.output {
                Format::Text => crate::bind::text::render(&report),
                Format::Json => {
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| Error::Usage(e.to_string()))?
                        + "\n"
                }
                Format::Yaml => {
                    serde_saphyr::to_string(&report).map_err(|e| Error::Usage(e.to_string()))?
                }
                Format::Junit => return Err(Error::Usage("-o junit is for verify".into())),
            };
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(rendered.as_bytes())?;
            stdout.flush()?;
            return Ok(Exit::Verified);
        }
        Command::Verify(args) => (
            ReportKind::VerifyReport,
            block_on(crate::commands::verify::run(&cli.global, args))?,
        ),
    };
    let mut report = Report::new(kind, items);
    if let Command::Verify(args) = &cli.command
        && crate::commands::verify::is_fleet(args)
    {
        report = report.with_summary();
    }
    let color = cli.global.output == Format::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let rendered = report::render(&report, cli.global.output, color, cli.global.verbose > 0)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(rendered.as_bytes())?;
    stdout.flush()?;
    // whoami and verify alike: a pod whose identity could not be established never exits 0.
    Ok(Exit::of_items(&report.items))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
