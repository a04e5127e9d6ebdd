//! The `hort` command line, in the manner of ripgrep's: `main` parses the
//! arguments ([`args`]), sets up logging and hands each command to one
//! short function of [`commands`] (benchmarks: [`bench`]), which calls the
//! library — the service layer for everything a front end does, the
//! ingest pipeline and the store's factory for maintenance. Output
//! formatting lives in [`output`]. Errors are one line on stderr; exit codes
//! are 0 (ok), 1 (failed) and 2 (usage).

mod args;
mod bench;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Cmd, LogFormat};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    if let Cmd::PdfWorker {
        image,
        pdfium,
        pdfium_only,
        ocr,
        ocr_languages,
        ocr_dpi,
        ocr_budget_ms,
    } = &cli.cmd
    {
        use hort::ingest::loader::{Engines, OcrSetup};
        let engines = Engines {
            pdfium: pdfium.clone(),
            pdfium_only: *pdfium_only,
            ocr: ocr.as_ref().map(|dir| OcrSetup {
                dir: dir.clone(),
                languages: ocr_languages.clone(),
                dpi: *ocr_dpi,
                budget: std::time::Duration::from_millis(*ocr_budget_ms),
            }),
        };
        return ExitCode::from(hort::ingest::loader::pdf::worker_main(&engines, *image) as u8);
    }
    init_logging(&cli);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hort: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A server logs each request (id, route, status, latency, principal; never
/// credentials); other commands only warnings. `HORT_LOG` overrides.
fn init_logging(cli: &Cli) {
    let default = match cli.cmd {
        Cmd::Serve { .. } | Cmd::Demo { .. } => "warn,hort=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
}
