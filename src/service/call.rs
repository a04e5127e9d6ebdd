//! One call of a use case: who asked, through which front end, and the
//! audit record the use case fills as it goes (question, hits, documents,
//! provider, tokens, cost, flags). The front end opens it when the request
//! arrives — before authentication, so refusals are recorded too — and
//! [`Call::finish`]es it with the outcome; every front end thereby writes
//! the same record for the same work.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Service;
use crate::gateway::audit::{AuditError, AuditRecord};
use crate::gateway::Gateway;
use crate::generate::{internal_details, Answer};
use crate::retrieve::Hit;

struct State {
    record: AuditRecord,
    question: Option<String>,
    started: Instant,
    deferred: bool,
    finished: bool,
}

/// The audit context of one call (cheap to clone: one record).
#[derive(Clone)]
pub struct Call(Arc<Mutex<State>>);

impl Call {
    /// A call through `endpoint` (e.g. `/v1/query`, `mcp:tools/call:search`,
    /// `cli:query`) with the front end's request id.
    pub fn new(request_id: &str, endpoint: &str) -> Call {
        Call(Arc::new(Mutex::new(State {
            record: AuditRecord {
                request_id: request_id.to_string(),
                endpoint: endpoint.to_string(),
                ..AuditRecord::default()
            },
            question: None,
            started: Instant::now(),
            deferred: false,
            finished: false,
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut crate::sync::lock(&self.0))
    }

    /// The request's id.
    pub fn request_id(&self) -> String {
        self.with(|s| s.record.request_id.clone())
    }

    /// The principal, once known (empty before authentication).
    pub fn principal(&self) -> String {
        self.with(|s| s.record.principal.clone())
    }

    /// Records who is calling (after authentication).
    pub fn set_principal(&self, name: &str) {
        self.with(|s| s.record.principal = name.to_string());
    }

    /// The question (the log keeps its hash, and its masked text if configured).
    pub fn set_question(&self, q: &str) {
        self.with(|s| s.question = Some(q.to_string()));
    }

    /// The chunks and documents a search returned.
    pub fn set_hits(&self, hits: &[Hit]) {
        self.with(|s| {
            s.record.chunks = hits.iter().map(|h| h.chunk_id.clone()).collect();
            let mut docs: Vec<String> = Vec::new();
            for h in hits {
                if !docs.contains(&h.doc) {
                    docs.push(h.doc.clone());
                }
            }
            s.record.docs = docs;
            if hits.iter().any(|h| h.injection.is_some())
                && !s.record.flags.iter().any(|f| f == "injection_suspected")
            {
                s.record.flags.push("injection_suspected".into());
            }
        });
    }

    /// What an answer did: provider, locality, tokens, cost, flags (with
    /// which output check fired, which the asker is not told).
    pub fn set_answer(&self, a: &Answer) {
        self.set_hits(&a.hits);
        self.with(|s| {
            let r = &mut s.record;
            r.provider = Some(a.route.provider.clone());
            r.locality = serde_json::to_value(a.route.locality)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            r.provider_errors = internal_details(&a.route.attempts);
            r.prompt_tokens = a.usage.prompt_tokens;
            r.completion_tokens = a.usage.completion_tokens;
            r.cost_usd = a.usage.cost_usd;
            let f = &a.flags;
            let mut add = |on: bool, name: &str| {
                if on && !r.flags.iter().any(|x| x == name) {
                    r.flags.push(name.to_string());
                }
            };
            add(!f.quarantined.is_empty(), "quarantined");
            add(f.query_injection.is_some(), "query_injection");
            add(f.pii_masked > 0, "pii_masked");
            add(!f.output_blocked.is_empty(), "output_blocked");
            for flag in &a.audit_flags {
                add(true, flag);
            }
            add(f.citations_removed > 0, "citations_removed");
            add(!f.unsupported_sentences.is_empty(), "unsupported_sentences");
        });
    }

    /// Tokens and cost of a step that was not an answer (a workflow turn).
    pub fn set_usage(&self, u: &crate::gateway::Usage) {
        self.with(|s| {
            s.record.prompt_tokens = u.prompt_tokens;
            s.record.completion_tokens = u.completion_tokens;
            s.record.cost_usd = u.cost_usd;
        });
    }

    /// Provider failures in full (the caller saw only their kind).
    pub fn set_provider_errors(&self, errors: Vec<String>) {
        self.with(|s| s.record.provider_errors = errors);
    }

    /// The documents a call showed or changed.
    pub fn set_docs(&self, docs: Vec<String>) {
        self.with(|s| s.record.docs = docs);
    }

    /// Adds a flag (an approval's state, a refusal, …).
    pub fn add_flag(&self, flag: impl Into<String>) {
        let flag = flag.into();
        self.with(|s| s.record.flags.push(flag));
    }

    /// Tokens an agent call used (model tokens and returned text / 4).
    pub fn set_tokens(&self, tokens: u64) {
        self.with(|s| s.record.prompt_tokens = tokens.min(u32::MAX as u64) as u32);
    }

    /// The call goes on after its front end returned (a stream): the task
    /// that ends it finishes it.
    pub fn defer(&self) {
        self.with(|s| s.deferred = true);
    }

    /// Whether the audit line waits for the end of a stream.
    pub fn is_deferred(&self) -> bool {
        self.with(|s| s.deferred)
    }

    /// Writes the audit record (once) with the call's outcome; a failure to
    /// write is logged and counted (`hort_audit_write_failures_total`).
    pub fn finish(&self, svc: &Service, status: u16, error: Option<String>) {
        if let Err(e) = self.record(svc.gateway(), status, error) {
            svc.metrics().audit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("audit log: {e}");
        }
    }

    /// Writes the audit record (once) through `gateway`.
    pub fn record(
        &self,
        gateway: &Gateway,
        status: u16,
        error: Option<String>,
    ) -> Result<(), AuditError> {
        let Some(mut record) = self.with(|s| {
            if s.finished {
                return None;
            }
            s.finished = true;
            let mut r = s.record.clone();
            r.status = status;
            r.error = error;
            r.latency_ms = s.started.elapsed().as_millis() as u64;
            if let Some(q) = &s.question {
                gateway.question(q, &mut r);
            }
            Some(r)
        }) else {
            return Ok(());
        };
        record.time = crate::gateway::rfc3339_now();
        if record.principal.is_empty() {
            record.principal = "-".into();
        }
        gateway.audit(record)
    }
}
