//! Prometheus metrics in the text exposition format, kept in a few maps
//! behind mutexes (the label sets are small and bounded: routes, statuses,
//! configured providers).

use crate::sync::lock;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use super::ledger::Usage;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; 12],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The node's counters and histograms, rendered in the Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, u16), Histogram>>,
    provider: Mutex<BTreeMap<(String, String), Histogram>>,
    tokens: Mutex<BTreeMap<(String, &'static str), u64>>,
    cost: Mutex<BTreeMap<String, f64>>,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Requests refused by a budget.
    pub budget_refused: AtomicU64,
    /// Requests refused at the concurrency limit.
    pub overloaded: AtomicU64,
    /// Questions and answers refused by the content policy.
    pub policy_refused: AtomicU64,
    injection_suspected: AtomicU64,
    quarantined: AtomicU64,
    query_injection: AtomicU64,
    pii_masked: AtomicU64,
    output_blocked: AtomicU64,
    citations_removed: AtomicU64,
    /// Requests being answered now.
    pub in_flight: AtomicI64,
    /// Audit records that could not be written.
    pub audit_failures: AtomicU64,
    /// MCP tool calls by tool and outcome (ok, error, refused, pending_approval, …).
    mcp: Mutex<BTreeMap<(String, String), u64>>,
    /// Approval decisions by decision.
    approvals: Mutex<BTreeMap<String, u64>>,
    /// Workflow runs by how they ended.
    runs: Mutex<BTreeMap<String, u64>>,
}

/// What one answer did, as the metrics count it.
pub struct AnswerFacts<'a> {
    /// (provider, outcome, milliseconds) of every attempt.
    pub attempts: Vec<(&'a str, &'a str, u64)>,
    /// The provider that answered.
    pub provider: &'a str,
    /// Tokens and cost of the answer.
    pub usage: &'a Usage,
    /// Hits that looked like prompt injection.
    pub injection_suspected: usize,
    /// Of those, kept out of the prompt.
    pub quarantined: usize,
    /// Whether the question itself looked like one.
    pub query_injection: bool,
    /// Personal-data values masked.
    pub pii_masked: usize,
    /// Whether the answer was withheld or had markers cut.
    pub output_blocked: usize,
    /// Citations removed.
    pub citations_removed: usize,
}

/// Index figures shown as gauges.
pub struct IndexGauges {
    /// The store's commit generation.
    pub generation: u64,
    /// Documents stored.
    pub documents: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Segments of the embedded index.
    pub segments: usize,
    /// Bytes on disk.
    pub bytes: u64,
    /// Whether agents are stopped (the kill switch).
    pub agents_stopped: bool,
    /// The audit log refuses appends (cut or edited).
    pub audit_broken: bool,
}

impl Metrics {
    /// Counts one MCP tool call.
    pub fn observe_mcp(&self, tool: &str, outcome: &str) {
        *lock(&self.mcp)
            .entry((tool.to_string(), outcome.to_string()))
            .or_insert(0) += 1;
    }

    /// Counts one workflow run (or resumption) by how it ended.
    pub fn observe_run(&self, status: &str) {
        *lock(&self.runs).entry(status.to_string()).or_insert(0) += 1;
    }

    /// Counts one approval decision.
    pub fn observe_approval(&self, decision: &str) {
        *lock(&self.approvals)
            .entry(decision.to_string())
            .or_insert(0) += 1;
    }

    /// Counts one HTTP request and its latency.
    pub fn observe_http(&self, route: &str, status: u16, secs: f64) {
        lock(&self.http)
            .entry((route.to_string(), status))
            .or_default()
            .observe(secs);
    }

    /// Provider latencies and errors, tokens, cost and flags of one answer.
    pub fn observe_answer(&self, a: &AnswerFacts<'_>) {
        {
            let mut p = lock(&self.provider);
            for (provider, outcome, ms) in &a.attempts {
                if *outcome == "skipped" {
                    continue;
                }
                p.entry((provider.to_string(), outcome.to_string()))
                    .or_default()
                    .observe(*ms as f64 / 1000.0);
            }
        }
        {
            let mut t = lock(&self.tokens);
            *t.entry((a.provider.to_string(), "input")).or_default() +=
                a.usage.prompt_tokens as u64;
            *t.entry((a.provider.to_string(), "output")).or_default() +=
                a.usage.completion_tokens as u64;
        }
        *lock(&self.cost).entry(a.provider.to_string()).or_default() += a.usage.cost_usd;
        let add = |c: &AtomicU64, n: usize| c.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.injection_suspected, a.injection_suspected);
        add(&self.quarantined, a.quarantined);
        add(&self.query_injection, a.query_injection as usize);
        add(&self.pii_masked, a.pii_masked);
        add(&self.output_blocked, a.output_blocked);
        add(&self.citations_removed, a.citations_removed);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self, idx: &IndexGauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP hort_http_request_duration_seconds Requests by route and status.\n# TYPE hort_http_request_duration_seconds histogram\n");
        for ((route, status), h) in lock(&self.http).iter() {
            h.render(
                &mut out,
                "hort_http_request_duration_seconds",
                &format!("route=\"{}\",status=\"{status}\"", esc(route)),
            );
        }
        out.push_str("# HELP hort_provider_call_duration_seconds Provider attempts by outcome.\n# TYPE hort_provider_call_duration_seconds histogram\n");
        for ((p, outcome), h) in lock(&self.provider).iter() {
            h.render(
                &mut out,
                "hort_provider_call_duration_seconds",
                &format!("provider=\"{}\",outcome=\"{}\"", esc(p), esc(outcome)),
            );
        }
        out.push_str("# HELP hort_provider_tokens_total Tokens by provider and direction.\n# TYPE hort_provider_tokens_total counter\n");
        for ((p, dir), n) in lock(&self.tokens).iter() {
            let _ = writeln!(
                out,
                "hort_provider_tokens_total{{provider=\"{}\",direction=\"{dir}\"}} {n}",
                esc(p)
            );
        }
        out.push_str("# HELP hort_provider_cost_usd_total Cost by provider.\n# TYPE hort_provider_cost_usd_total counter\n");
        for (p, c) in lock(&self.cost).iter() {
            let _ = writeln!(
                out,
                "hort_provider_cost_usd_total{{provider=\"{}\"}} {c}",
                esc(p)
            );
        }
        let counters: [(&str, &str, &AtomicU64); 10] = [
            (
                "hort_audit_write_failures_total",
                "Audit records that could not be written.",
                &self.audit_failures,
            ),
            (
                "hort_rate_limited_total",
                "Requests refused by a rate limit.",
                &self.rate_limited,
            ),
            (
                "hort_budget_refused_total",
                "Requests refused because a budget was spent.",
                &self.budget_refused,
            ),
            (
                "hort_overloaded_total",
                "Requests refused at the concurrency limit.",
                &self.overloaded,
            ),
            (
                "hort_injection_suspected_total",
                "Retrieved chunks that looked like prompt injection.",
                &self.injection_suspected,
            ),
            (
                "hort_injection_quarantined_total",
                "Chunks kept out of prompts.",
                &self.quarantined,
            ),
            (
                "hort_query_injection_total",
                "Questions that looked like prompt injection.",
                &self.query_injection,
            ),
            (
                "hort_pii_masked_total",
                "Personal-data values masked before a provider.",
                &self.pii_masked,
            ),
            (
                "hort_output_blocked_total",
                "Answers (or parts) withheld by the output checks.",
                &self.output_blocked,
            ),
            (
                "hort_citations_removed_total",
                "Citations removed for naming no source sent.",
                &self.citations_removed,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "hort_in_flight_requests",
                "Requests being handled.",
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "hort_index_generation",
                "Generation of the served index.",
                idx.generation as f64,
            ),
            (
                "hort_index_documents",
                "Documents in the served index.",
                idx.documents as f64,
            ),
            (
                "hort_index_chunks",
                "Live chunks in the served index.",
                idx.chunks as f64,
            ),
            (
                "hort_index_segments",
                "Segments in the served index.",
                idx.segments as f64,
            ),
            (
                "hort_index_segment_bytes",
                "Bytes of segment files.",
                idx.bytes as f64,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out.push_str("# HELP hort_mcp_tool_calls_total MCP tool calls by tool and outcome.\n# TYPE hort_mcp_tool_calls_total counter\n");
        for ((tool, outcome), n) in lock(&self.mcp).iter() {
            let _ = writeln!(
                out,
                "hort_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP hort_workflow_runs_total Workflow runs by how they ended (done, stopped, waiting_for_approval, failed).\n# TYPE hort_workflow_runs_total counter\n");
        for (status, n) in lock(&self.runs).iter() {
            let _ = writeln!(out, "hort_workflow_runs_total{{status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP hort_approvals_total Decisions on pending agent actions.\n# TYPE hort_approvals_total counter\n");
        for (decision, n) in lock(&self.approvals).iter() {
            let _ = writeln!(out, "hort_approvals_total{{decision=\"{decision}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP hort_agents_stopped 1 while the kill switch stops every MCP session.\n# TYPE hort_agents_stopped gauge\nhort_agents_stopped {}",
            u8::from(idx.agents_stopped)
        );
        let _ = writeln!(
            out,
            "# HELP hort_audit_chain_broken 1 while the audit log refuses appends (it was cut or edited; see the server log).\n# TYPE hort_audit_chain_broken gauge\nhort_audit_chain_broken {}",
            u8::from(idx.audit_broken)
        );
        out
    }
}

/// The gateway's own counters: the answer cache, budget alerts and the
/// content policy (appended to [`Metrics::render`]'s output).
pub fn render_gateway(gw: &super::Gateway, policy_refused: u64) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, rows: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    };
    if let Some(c) = gw.cache() {
        let s = &c.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        counter(
            "hort_cache_requests_total",
            "Answer cache lookups by result.",
            &[
                ("result=\"hit\",kind=\"exact\"", g(&s.hits_exact)),
                ("result=\"hit\",kind=\"semantic\"", g(&s.hits_semantic)),
                ("result=\"miss\"", g(&s.misses)),
                ("result=\"bypass\"", g(&s.bypassed)),
            ],
        );
        counter(
            "hort_cache_stored_total",
            "Answers kept.",
            &[("", g(&s.stored))],
        );
        counter(
            "hort_cache_evictions_total",
            "Entries dropped (size bound, age, changed documents).",
            &[("", g(&s.evictions))],
        );
        counter(
            "hort_cache_saved_tokens_total",
            "Provider tokens not spent thanks to hits.",
            &[("", g(&s.saved_tokens))],
        );
        counter(
            "hort_cache_saved_cost_usd_total",
            "Provider cost not spent thanks to hits.",
            &[("", g(&s.saved_micro_usd) / 1e6)],
        );
        counter(
            "hort_cache_errors_total",
            "Cache store failures (served as misses).",
            &[("", g(&s.errors))],
        );
    }
    let a = &gw.alerter().stats;
    counter(
        "hort_budget_alerts_total",
        "Budget alerts by delivery state.",
        &[
            ("state=\"raised\"", a.raised.load(Ordering::Relaxed) as f64),
            (
                "state=\"delivered\"",
                a.delivered.load(Ordering::Relaxed) as f64,
            ),
            ("state=\"failed\"", a.failed.load(Ordering::Relaxed) as f64),
        ],
    );
    counter(
        "hort_content_policy_refusals_total",
        "Questions and answers refused by the content policy.",
        &[("", policy_refused as f64)],
    );
    out
}
