//! Progress of long ingests: a bar on a terminal, a log line every few
//! seconds otherwise (CI logs, pipes), nothing when asked to be quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    log: bool,
    total: usize,
    done: usize,
    chunks: usize,
    embedded: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(total: usize, enabled: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (enabled && tty && total > 0).then(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files, {msg}",
            ) {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            log: enabled && !tty,
            bar,
            total,
            done: 0,
            chunks: 0,
            embedded: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub fn file_done(&mut self, chunks: usize) {
        self.done += 1;
        self.chunks += chunks;
        if let Some(b) = &self.bar {
            b.set_position(self.done as u64);
            b.set_message(self.counts());
        } else {
            self.maybe_line();
        }
    }

    /// Chunks embedded (the rate shown is of these: embedding is the work).
    pub fn embedded(&mut self, chunks: usize) {
        self.embedded += chunks;
        if let Some(b) = &self.bar {
            b.set_message(self.counts());
        } else {
            self.maybe_line();
        }
    }

    fn maybe_line(&mut self) {
        if self.log && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            self.line();
        }
    }

    fn counts(&self) -> String {
        let s = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{} chunks, {} embedded ({:.1} chunks/s)",
            self.chunks,
            self.embedded,
            self.embedded as f64 / s
        )
    }

    /// A status message (e.g. "writing segment") that does not advance the count.
    pub fn note(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{}, {msg}", self.counts()));
        } else if self.log {
            eprintln!("ingest: {msg}");
        }
    }

    fn line(&self) {
        let pct = (self.done * 100).checked_div(self.total).unwrap_or(100);
        eprintln!(
            "ingest: {}/{} files ({pct}%), {}, {:.1} s",
            self.done,
            self.total,
            self.counts(),
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else if self.log && self.total > 0 {
            self.line();
        }
    }
}
