//! One answer, as named stages: screen the question, number the sources
//! (quarantined ones redacted or dropped), rate the sensitivity, build the
//! prompts (masked and raw), run the provider chain, check the output,
//! verify the citations, book the usage. [`Generator::answer`] runs them in
//! order; each is a function of its inputs, testable on its own.

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use super::citations::{self, Sent, Verified};
use super::extractive;
use super::guard::{relay_sentences, OutputGuard};
use super::prompt::{assemble, system_prompt, Language};
use super::provider::{estimate_tokens, ChatRequest, Completion, Provider, SourceText};
use super::router::{call_slot, Attempt, Piece, Slot};
use super::{
    internal_details, refusal, Answer, Block, Flags, GenerateError, Generator, QueryFlag, Route,
    StreamEvent, MARKERS_REMOVED, WITHHELD,
};
use crate::acl::{AccessRule, Classification, Principal};
use crate::config::{InjectionAction, Locality, PolicyTarget, QueryInjectionAction};
use crate::gateway::cache::{self, CacheOutcome, CacheScope, SourcePart};
use crate::gateway::policy::ContentPolicy;
use crate::gateway::{BudgetExceeded, Usage};
use crate::retrieve::translate::Senses;
use crate::retrieve::Hit;
use crate::sanitize::injection::{self, Detection};
use crate::sanitize::pii::{Masker, PiiKind};
use crate::sanitize::spotlight::Spotlight;
use crate::store::IndexRead;

/// A numbered source as the providers see it: a hit, or a quarantined hit
/// without its injected sentences.
#[derive(Clone, Debug)]
pub(super) struct Source {
    pub n: usize,
    pub hit: Hit,
}

/// How sensitive the answer's context is, and what that allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Level {
    /// The highest classification of the sources and the question.
    pub sensitivity: Classification,
    /// Only local providers may see the context.
    pub local_only: bool,
}

/// What a provider of the chain answered, and with what it was asked.
pub(super) struct Called {
    pub slot: Arc<Slot>,
    pub completion: Completion,
    /// Numbers of the sources that fit into its prompt.
    pub sent: Vec<usize>,
    /// Whether it got the masked prompt.
    pub masked: bool,
}

/// The outcome of running the chain.
pub(super) struct ChainRun {
    pub called: Option<Called>,
    pub attempts: Vec<Attempt>,
    /// The last budget refusal, if a provider was skipped for the budget.
    pub budget: Option<BudgetExceeded>,
}

/// The prompts of one answer: raw (for local providers) and masked (for
/// cloud ones), built once.
pub(super) struct Prompts {
    question: String,
    masked_question: String,
    raw: Vec<SourceText>,
    masked: Vec<SourceText>,
    pub masker: Masker,
    /// Personal-data values masked in the sources and the question.
    pub masked_count: usize,
    pub spotlight: Spotlight,
    pub system: String,
    max_context_tokens: u32,
    senses: Option<Arc<Senses>>,
}

impl Prompts {
    pub(super) fn new(
        question: &str,
        sources: &[Source],
        lang: Language,
        pii_types: &[PiiKind],
        max_context_tokens: u32,
        senses: Option<Arc<Senses>>,
    ) -> Prompts {
        let mut masker = Masker::new();
        let mut masked_count = 0;
        let mut raw = Vec::with_capacity(sources.len());
        let mut masked = Vec::with_capacity(sources.len());
        for s in sources {
            // A model told that a source was read by OCR can allow for
            // misread characters instead of repeating them as fact.
            let label = match s.hit.page {
                Some(p) => format!("{}, {}", s.hit.doc, crate::text::page_label(&s.hit.doc, p)),
                None => s.hit.doc.clone(),
            } + &crate::text::ocr_note(s.hit.ocr_confidence);
            let (mtext, c) = masker.mask(&s.hit.text, pii_types);
            masked_count += c;
            raw.push(SourceText {
                n: s.n,
                label: label.clone(),
                text: s.hit.text.clone(),
            });
            masked.push(SourceText {
                n: s.n,
                label,
                text: mtext,
            });
        }
        let (masked_question, qc) = masker.mask(question, pii_types);
        let spotlight = Spotlight::new();
        let system = system_prompt(lang, &spotlight);
        Prompts {
            question: question.to_string(),
            masked_question,
            raw,
            masked,
            masker,
            masked_count: masked_count + qc,
            spotlight,
            system,
            max_context_tokens,
            senses,
        }
    }

    /// The request for one provider, and the numbers of the sources that fit.
    pub(super) fn request(&self, masked: bool, max_tokens: u32) -> (ChatRequest, Vec<usize>) {
        let (srcs, q) = if masked {
            (self.masked.clone(), self.masked_question.clone())
        } else {
            (self.raw.clone(), self.question.clone())
        };
        let (user, kept) = assemble(&self.spotlight, srcs, &q, self.max_context_tokens);
        let ns = kept.iter().map(|s| s.n).collect();
        (
            ChatRequest {
                system: self.system.clone(),
                user,
                question: q,
                sources: kept,
                max_tokens,
                temperature: 0.1,
                senses: if masked { None } else { self.senses.clone() },
            },
            ns,
        )
    }
}

/// Numbers the hits as sources; a quarantined one is kept only without its
/// injected sentences (or dropped, if nothing clean is left). The sentences
/// are found by the rules; a chunk the learned detector quarantined where
/// the rules alone see nothing is dropped whole (what the head read cannot
/// be cut out sentence by sentence here, and keeping it would pass it on).
/// Records the suspected and quarantined chunks in `flags`.
pub(super) fn prepare_sources(hits: &[Hit], threshold: f32, flags: &mut Flags) -> Vec<Source> {
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let mut hit = h.clone();
        if let Some(inj) = &h.injection {
            flags.injection_suspected.push(h.chunk_id.clone());
            if inj.action == InjectionAction::Quarantine {
                flags.quarantined.push(h.chunk_id.clone());
                let learned_only = inj.reasons.iter().any(|r| r == "learned")
                    && injection::detect(&h.text).score < threshold;
                if learned_only {
                    continue;
                }
                match injection::redact(&h.text, threshold) {
                    Some(clean) => hit.text = clean,
                    None => continue,
                }
            }
        }
        out.push(Source {
            n: out.len() + 1,
            hit,
        });
    }
    out
}

/// The documents of the sources, once each.
fn docs_of(sources: &[Source]) -> Vec<String> {
    let mut docs: Vec<String> = sources.iter().map(|s| s.hit.doc.clone()).collect();
    docs.sort();
    docs.dedup();
    docs
}

/// Drops lines that carry the spotlight's markers (the model repeated them).
fn strip_markers(text: &str, spotlight: &Spotlight) -> String {
    text.lines()
        .filter(|l| !spotlight.leaked(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The output checks on the unmasked answer: repeated markers are cut, an
/// answer that copies the system prompt or hidden text is replaced by the
/// refusal (`streamed`: what the stream's checks already found). Returns
/// the text and the audit flags.
pub(super) async fn check_output(
    text: String,
    spotlight: &Spotlight,
    guard: &OutputGuard,
    streamed: Option<Block>,
    flags: &mut Flags,
    lang: Language,
    policy: &ContentPolicy,
) -> (String, Vec<String>) {
    let mut text = text;
    let mut audit = Vec::new();
    if spotlight.leaked(&text) {
        flags.output_blocked.push(MARKERS_REMOVED.into());
        audit.push("output_blocked:markers".to_string());
        text = strip_markers(&text, spotlight);
    }
    let block = match streamed {
        Some(b) => Some(b),
        None => guard.check_async(text.clone()).await,
    };
    if let Some(b) = block {
        flags.output_blocked.push(WITHHELD.into());
        audit.push(b.flag().to_string());
        text = match (b, policy.check(&text, PolicyTarget::Answer)) {
            // The content policy is public: its message may say why.
            (Block::Policy, Some(d)) => {
                audit.push(format!("content_policy:answer:{}", d.rule));
                d.message
            }
            _ => refusal(lang).to_string(),
        };
    }
    (text, audit)
}

/// Verifies the citations against the sources that were sent (located in
/// the original chunk for a redacted one) and visible to `principal`;
/// records what was removed or unsupported in `flags`.
pub(super) fn verify_citations(
    text: &str,
    sources: &[Source],
    hits: &[Hit],
    sent: &[usize],
    principal: &Principal,
    flags: &mut Flags,
    lang: Language,
) -> Verified {
    let sent: Vec<Sent> = sources
        .iter()
        .filter(|s| sent.contains(&s.n))
        .map(|s| {
            let original = hits.iter().find(|o| o.id == s.hit.id).unwrap_or(&s.hit);
            Sent {
                n: s.n,
                hit: original.clone(),
                text: s.hit.text.clone(),
            }
        })
        .collect();
    let v = citations::verify(text, &sent, |h| {
        AccessRule::new(&h.teams, h.classification)
            .map(|r| principal.can_see(Some(&r)))
            .unwrap_or(false)
    });
    flags.citations_removed = v.removed.len();
    // "Nothing found" and a withheld answer need no source.
    if v.answer != extractive::nothing_found(lang) && flags.output_blocked.is_empty() {
        flags.unsupported_sentences = v.unsupported.clone();
    }
    flags.unsupported_quotes = v.bad_quotes.clone();
    v
}

/// What a completion cost at the provider's prices.
pub(super) fn usage_of(provider: &dyn Provider, c: &Completion) -> Usage {
    let (pin, pout) = provider.prices();
    Usage {
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        cost_usd: c.prompt_tokens as f64 / 1000.0 * pin
            + c.completion_tokens as f64 / 1000.0 * pout,
    }
}

/// Why the answering provider was the one.
pub(super) fn route_reason(level: Level, attempts: &[Attempt]) -> String {
    if level.local_only {
        format!("context is {}: local providers only", level.sensitivity)
    } else if attempts.iter().any(|a| a.outcome != "ok") {
        "first available provider of the chain (after fallback)".to_string()
    } else {
        "first provider of the chain".to_string()
    }
}

/// The relay that turns provider pieces into checked, unmasked sentences
/// for a streaming client.
type Relay = (
    Option<UnboundedSender<Piece>>,
    Option<JoinHandle<Option<Block>>>,
);

fn start_relay(
    stream: Option<&UnboundedSender<StreamEvent>>,
    prompts: &Prompts,
    guard: &OutputGuard,
) -> Relay {
    match stream {
        Some(out) => {
            let (tx, rx) = mpsc::unbounded_channel::<Piece>();
            let handle = tokio::spawn(relay_sentences(
                rx,
                out.clone(),
                prompts.masker.clone(),
                prompts.spotlight.clone(),
                guard.clone(),
            ));
            (Some(tx), Some(handle))
        }
        None => (None, None),
    }
}

impl Generator {
    /// Refuses the question or flags it, per `[sanitize] on_query_injection`,
    /// on the detector's verdict `q` (the service's rules and learned head).
    pub(super) fn screen_question(
        &self,
        q: &Detection,
    ) -> Result<Option<QueryFlag>, GenerateError> {
        if q.score < self.sanitize.injection_threshold {
            return Ok(None);
        }
        let reasons: Vec<String> = q.reason_names();
        if self.sanitize.on_query_injection == QueryInjectionAction::Refuse {
            return Err(GenerateError::QueryRefused(reasons.join(", ")));
        }
        Ok(Some(QueryFlag {
            score: q.score,
            reasons,
        }))
    }

    /// The sensitivity of everything a provider would see.
    pub(super) fn level(&self, sources: &[Source], question: &str) -> Level {
        let sensitivity = sources
            .iter()
            .map(|s| s.hit.classification)
            .max()
            .max(self.query_level(question))
            .unwrap_or(Classification::Public);
        Level {
            sensitivity,
            local_only: self
                .routing
                .local_only_from
                .is_some_and(|t| sensitivity >= t),
        }
    }

    /// Tries the chain in order (skipping what the level or the budget
    /// rules out), then the extractive fallback if configured.
    pub(super) async fn run_chain(
        &self,
        principal: &Principal,
        prompts: &Prompts,
        level: Level,
        pieces: Option<&UnboundedSender<Piece>>,
    ) -> ChainRun {
        let mut run = ChainRun {
            called: None,
            attempts: Vec::new(),
            budget: None,
        };
        let mut tried_extractive = false;
        for slot in self.chain.iter().flat_map(|l| l.order()) {
            let p = &slot.provider;
            if level.local_only && p.locality() != Locality::Local {
                run.attempts.push(Attempt::skipped(
                    p.name(),
                    format!("context is {}: local providers only", level.sensitivity),
                ));
                continue;
            }
            let masked = self.masks(p.locality());
            let (req, sent) = prompts.request(masked, slot.policy.max_tokens);
            let (pin, pout) = p.prices();
            let worst = (estimate_tokens(&req.system) + estimate_tokens(&req.user)) as f64 / 1000.0
                * pin
                + req.max_tokens as f64 / 1000.0 * pout;
            if let Err(e) = self.gateway.check_budget(principal, worst) {
                run.attempts.push(Attempt::skipped(p.name(), e.to_string()));
                run.budget = Some(e);
                continue;
            }
            tried_extractive |= Arc::ptr_eq(&slot, &self.extractive);
            if let Ok(completion) = call_slot(&slot, &req, pieces, &mut run.attempts).await {
                run.called = Some(Called {
                    slot: slot.clone(),
                    completion,
                    sent,
                    masked,
                });
                return run;
            }
        }
        if self.routing.extractive_fallback && !tried_extractive {
            let (req, sent) = prompts.request(false, 600);
            if let Ok(completion) =
                call_slot(&self.extractive, &req, pieces, &mut run.attempts).await
            {
                run.called = Some(Called {
                    slot: self.extractive.clone(),
                    completion,
                    sent,
                    masked: false,
                });
            }
        }
        run
    }

    /// Why no provider answered: the budget, no local provider for local-only
    /// context, or each provider's failure.
    pub(super) fn failure(
        &self,
        level: Level,
        attempts: &[Attempt],
        budget: Option<BudgetExceeded>,
    ) -> GenerateError {
        if let Some(e) = budget {
            return GenerateError::Budget(e);
        }
        if level.local_only
            && !self
                .slots()
                .any(|s| s.provider.locality() == Locality::Local)
        {
            return GenerateError::NoLocalProvider(level.sensitivity);
        }
        let what: Vec<String> = attempts
            .iter()
            .map(|a| {
                format!(
                    "{}: {}",
                    a.provider,
                    a.detail.clone().unwrap_or_else(|| a.outcome.clone())
                )
            })
            .collect();
        GenerateError::AllFailed {
            public: what.join("; "),
            internal: internal_details(attempts),
        }
    }

    /// Answers `question` for `principal` from `hits` (already
    /// access-filtered), reading `view` only for the output checks; the
    /// answer cache is not used, and the question is screened by the rules
    /// alone.
    pub async fn answer(
        &self,
        view: &Arc<dyn IndexRead>,
        principal: &Principal,
        question: &str,
        hits: Vec<Hit>,
        stream: Option<UnboundedSender<StreamEvent>>,
    ) -> Result<Answer, GenerateError> {
        self.answer_cached(
            view,
            principal,
            question,
            None,
            hits,
            None,
            stream,
            &CacheScope::default(),
        )
        .await
    }

    /// The context digest of the sources as a provider would get them.
    fn context_of(&self, sources: &[Source]) -> cache::Digest {
        let labels: Vec<String> = sources
            .iter()
            .map(|s| format!("{}|{:?}", s.hit.doc, s.hit.page))
            .collect();
        let classes: Vec<String> = sources
            .iter()
            .map(|s| s.hit.classification.to_string())
            .collect();
        let parts: Vec<SourcePart<'_>> = sources
            .iter()
            .zip(labels.iter().zip(&classes))
            .map(|(s, (label, class))| SourcePart {
                chunk_id: &s.hit.chunk_id,
                label,
                text: &s.hit.text,
                classification: class,
            })
            .collect();
        cache::context(&parts, &self.fingerprint, "", super::PROMPT_VERSION)
    }

    /// A cached answer as if the provider had just sent it; `None` when its
    /// provider is no longer in the chain.
    fn replay(&self, f: cache::Found) -> Option<(Called, CacheOutcome)> {
        let slot = self
            .slots()
            .find(|s| s.provider.name() == f.entry.provider)?
            .clone();
        Some((
            Called {
                slot,
                completion: Completion {
                    text: f.entry.completion,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    usage_reported: true,
                    model: String::new(),
                },
                sent: f.entry.sent,
                masked: f.entry.masked,
            },
            f.outcome,
        ))
    }

    /// [`Generator::answer`], through the answer cache for a caller of `scope`;
    /// `screened` is the injection detector's verdict on the question (the
    /// rules and the learned head the service runs; `None`: the rules alone);
    /// `senses`, its words' translations when the search translated them.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer_cached(
        &self,
        view: &Arc<dyn IndexRead>,
        principal: &Principal,
        question: &str,
        screened: Option<Detection>,
        hits: Vec<Hit>,
        senses: Option<Arc<Senses>>,
        stream: Option<UnboundedSender<StreamEvent>>,
        scope: &CacheScope,
    ) -> Result<Answer, GenerateError> {
        let lang = Language::detect(question);
        let screened = screened.unwrap_or_else(|| injection::detect(question));
        let mut flags = Flags {
            query_injection: self.screen_question(&screened)?,
            ..Flags::default()
        };
        let sources = prepare_sources(&hits, self.sanitize.injection_threshold, &mut flags);
        let level = self.level(&sources, question);
        let prompts = Prompts::new(
            question,
            &sources,
            lang,
            &self.sanitize.pii_types,
            self.routing.max_context_tokens,
            senses,
        );
        let guard = OutputGuard::new(
            view.clone(),
            principal,
            &prompts.system,
            std::iter::once(question).chain(hits.iter().map(|h| h.text.as_str())),
            self.gateway.clone(),
        );
        let (pieces, relay) = start_relay(stream.as_ref(), &prompts, &guard);
        // The cache: the same question over the same context, for a
        // caller who may share it, skips the provider call (only).
        let cache = self
            .gateway
            .cache()
            .filter(|_| scope.enabled && flags.query_injection.is_none());
        if cache.is_none() {
            if let Some(c) = self.gateway.cache() {
                c.stats
                    .bypassed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let context = cache.map(|_| self.context_of(&sources));
        let found = match (cache, &context) {
            (Some(c), Some(ctx)) => c.lookup(question, ctx, scope),
            _ => None,
        };
        let mut outcome = self.gateway.cache().map(|_| CacheOutcome::bypass());
        let run = match found.and_then(|f| self.replay(f)) {
            Some((called, o)) => {
                outcome = Some(o);
                if let Some(p) = &pieces {
                    let _ = p.send(Piece::Text(called.completion.text.clone()));
                }
                ChainRun {
                    called: Some(called),
                    attempts: Vec::new(),
                    budget: None,
                }
            }
            None => {
                self.run_chain(principal, &prompts, level, pieces.as_ref())
                    .await
            }
        };
        let hit = outcome.as_ref().is_some_and(|o| o.status == "hit");
        drop(pieces);
        // What the stream withheld (of the last attempt) the answer withholds too.
        let streamed = match relay {
            Some(r) => r.await.unwrap_or(None),
            None => None,
        };
        let Some(called) = run.called else {
            return Err(self.failure(level, &run.attempts, run.budget));
        };
        if called.masked {
            flags.pii_masked = prompts.masked_count;
        }
        let text = prompts.masker.unmask(&called.completion.text);
        let raw = text.clone();
        let (text, mut audit_flags) = check_output(
            text,
            &prompts.spotlight,
            &guard,
            streamed,
            &mut flags,
            lang,
            self.gateway.policy(),
        )
        .await;
        let v = verify_citations(
            &text,
            &sources,
            &hits,
            &called.sent,
            principal,
            &mut flags,
            lang,
        );
        let provider = called.slot.provider.clone();
        let usage = if hit {
            Usage::default()
        } else {
            let usage = usage_of(provider.as_ref(), &called.completion);
            self.gateway
                .record(&principal.name, &principal.teams, provider.name(), &usage);
            // Kept only what a provider was paid for and the checks let through.
            let keep =
                !Arc::ptr_eq(&called.slot, &self.extractive) && flags.output_blocked.is_empty();
            if let (Some(c), Some(ctx), true) = (cache, &context, keep) {
                // At rest with personal data as this context's placeholders.
                let mut m = prompts.masker.clone();
                let (completion, _) = m.mask(&raw, &self.sanitize.pii_types);
                let entry = cache::Entry {
                    v: cache::FORMAT,
                    created: 0,
                    context: String::new(),
                    completion,
                    provider: provider.name().to_string(),
                    sent: called.sent.clone(),
                    masked: called.masked,
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    cost_usd: usage.cost_usd,
                    docs: docs_of(&sources),
                    embedding: None,
                    model: None,
                    facets: Vec::new(),
                    scope: Vec::new(),
                };
                outcome = Some(c.store(question, ctx, scope, entry));
            } else if cache.is_some() {
                outcome = Some(CacheOutcome {
                    status: "miss",
                    ..CacheOutcome::bypass()
                });
            }
            usage
        };
        if let Some(o) = &outcome {
            audit_flags.push(o.flag());
        }
        let answer = Answer {
            answer: v.answer,
            citations: v.citations,
            hits,
            route: Route {
                provider: provider.name().to_string(),
                locality: provider.locality(),
                reason: match outcome.as_ref().filter(|_| hit) {
                    Some(o) => format!(
                        "served from the answer cache ({} hit, {} s old; {})",
                        o.kind.unwrap_or("exact"),
                        o.age_s.unwrap_or(0),
                        route_reason(level, &run.attempts)
                    ),
                    None => route_reason(level, &run.attempts),
                },
                sensitivity: level.sensitivity,
                attempts: run.attempts,
            },
            flags,
            usage,
            cache: outcome,
            audit_flags,
        };
        if let Some(out) = &stream {
            let _ = out.send(StreamEvent::Done(Box::new(answer.clone())));
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests;
