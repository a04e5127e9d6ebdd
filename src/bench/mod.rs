//! `hort bench`: measurements that back the numbers in the README. Every
//! suite prints a Markdown table and writes JSON (with machine information)
//! into `bench/results/`.

pub mod ann;
pub mod backends;
pub mod cache;
pub mod dataset;
pub mod detector;
pub mod embed;
pub mod ingest;
pub mod injection;
pub mod keyword;
pub mod open;
pub mod pdf;
pub mod pii;
pub mod quality;
pub mod query;
pub mod report;
pub mod synth;

use std::path::Path;

use serde::Serialize;

/// Facts about the machine a measurement ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// The CPU model.
    pub cpu: String,
    /// Cores available.
    pub cores: usize,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Operating system and kernel.
    pub os: String,
    /// hort's version.
    pub hort_version: String,
    /// When the benchmark ran (UTC).
    pub date: String,
}

impl Machine {
    /// The machine this process runs on.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        let date = std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os,
            hort_version: env!("CARGO_PKG_VERSION").to_string(),
            date,
        }
    }

    /// One line for report headers.
    pub fn line(&self) -> String {
        format!(
            "{} cores ({}), {} GiB RAM, {}, hort {}, {}",
            self.cores, self.cpu, self.memory_gib, self.os, self.hort_version, self.date
        )
    }
}

/// Resident memory of this process, from /proc/self/status (KiB).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rss {
    /// Resident memory in KiB.
    pub total_kib: u64,
    /// Anonymous (heap) memory in KiB.
    pub anon_kib: u64,
    /// File-backed (mapped) memory in KiB.
    pub file_kib: u64,
}

impl Rss {
    /// This process's resident memory now.
    pub fn now() -> Rss {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> u64 {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
        }
    }

    /// KiB in MiB.
    pub fn mib(kib: u64) -> f64 {
        (kib as f64 / 1024.0 * 10.0).round() / 10.0
    }
}

/// Writes `<dir>/<name>.json` and `<dir>/<name>.md`.
pub fn write_results<T: Serialize>(
    dir: &Path,
    name: &str,
    json: &T,
    markdown: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let body = serde_json::to_vec_pretty(json).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(format!("{name}.json")), body)?;
    std::fs::write(dir.join(format!("{name}.md")), markdown)
}

/// Percentile (0..=100) of an ascending slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
