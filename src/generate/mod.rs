//! Answers with verified citations, through pluggable providers.
//!
//! For one question: the hits the asker may see (quarantined ones removed)
//! become numbered, spotlighted sources; the highest classification among
//! them (and a rule-based rating of the question) decides which providers
//! may see them — at or above `local_only_from`, local ones only, and if none
//! is left the request fails closed or falls to the extractive answerer, never
//! to the cloud. Cloud providers get personal data masked. The chain is tried
//! in order with retries and circuit breakers; the answer is unmasked,
//! checked (markers, system prompt, text of documents the asker may not see)
//! and its citations verified. Usage and cost are booked on the gateway.

pub mod anthropic;
pub mod citations;
pub mod extractive;
mod http;
pub mod openai;
pub mod prompt;
pub mod provider;
pub mod router;

use std::sync::Arc;

use regex::Regex;
use serde::Serialize;
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::acl::{AccessRule, Classification, Principal};
use crate::config::{
    Config, InjectionAction, Locality, ProviderKind, QueryInjectionAction, RoutingConfig,
    SanitizeConfig,
};
use crate::gateway::{BudgetExceeded, Gateway, Usage};
use crate::retrieve::Hit;
use crate::sanitize::injection;
use crate::sanitize::pii::{self, Masker};
use crate::sanitize::spotlight::{copies, KnownRuns, Spotlight};
use crate::store::IndexRead;
use citations::{Citation, Sent};
use prompt::{assemble, system_prompt, Language};
use provider::{estimate_tokens, ChatRequest, SourceText};
use router::{call_slot, Attempt, Piece, Policy, Slot};

/// Texts the principal may not see that share words with `answer` (for the
/// check that an answer does not carry hidden text; an error means nothing
/// to check against, never a failed answer).
fn invisible_texts(view: &dyn IndexRead, principal: &Principal, answer: &str) -> Vec<String> {
    view.hidden_texts(principal, answer, 5).unwrap_or_else(|e| {
        tracing::warn!("leak check skipped: {e}");
        Vec::new()
    })
}

/// The whole errors of the failed attempts ("provider: error"), for the
/// audit log.
pub fn internal_details(attempts: &[Attempt]) -> Vec<String> {
    attempts
        .iter()
        .filter_map(|a| Some(format!("{}: {}", a.provider, a.internal.as_ref()?)))
        .collect()
}

/// Why an answer (or a streamed part of it) was withheld. The asker is only
/// told *that* it was ([`WITHHELD`]): naming the hidden-text check would
/// confirm a guess. The audit log gets the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    SystemPrompt,
    HiddenText,
}

impl Block {
    /// The audit flag.
    pub fn flag(self) -> &'static str {
        match self {
            Block::SystemPrompt => "output_blocked:system_prompt",
            Block::HiddenText => "output_blocked:hidden_text",
        }
    }
}

/// What the asker reads in `flags.output_blocked` for any withheld answer.
pub const WITHHELD: &str = "the answer was withheld by an output check";
/// … and when only repeated source markers were cut from it.
pub const MARKERS_REMOVED: &str = "source markers were removed from the answer";

/// The output checks of one answer, shared by the final answer and each
/// streamed sentence (so a stream never shows what the answer withholds).
#[derive(Clone)]
struct OutputGuard {
    view: Arc<dyn IndexRead>,
    principal: Principal,
    system: String,
    /// Word runs the asker already has (its question, the sources it may see).
    known: Arc<KnownRuns>,
}

impl OutputGuard {
    /// Whether `text` copies the system prompt or a text the asker may not see.
    /// Reads the index (a keyword search): call it off the async runtime.
    fn check(&self, text: &str) -> Option<Block> {
        if copies(text, &self.system, &self.known) {
            return Some(Block::SystemPrompt);
        }
        invisible_texts(self.view.as_ref(), &self.principal, text)
            .iter()
            .any(|hidden| copies(text, hidden, &self.known))
            .then_some(Block::HiddenText)
    }

    async fn check_async(&self, text: String) -> Option<Block> {
        let g = self.clone();
        tokio::task::spawn_blocking(move || g.check(&text))
            .await
            .unwrap_or(Some(Block::HiddenText)) // a crashed check withholds (fail closed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the question was refused: it looks like a prompt injection ({0})")]
    QueryRefused(String),
    #[error(
        "the context is {0}: only local providers may see it, and none is configured or available"
    )]
    NoLocalProvider(Classification),
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    /// `public` names each provider and the kind of its failure; `internal`
    /// holds the whole errors (URLs, bodies) for logs and the audit log.
    #[error("every provider failed ({public})")]
    AllFailed {
        public: String,
        internal: Vec<String>,
    },
    #[error("configuration: {0}")]
    Config(String),
}

/// Which provider answered, and why that one.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Route {
    pub provider: String,
    pub locality: Locality,
    pub reason: String,
    /// The highest classification of the context (and the question).
    pub sensitivity: Classification,
    pub attempts: Vec<Attempt>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueryFlag {
    pub score: f32,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Flags {
    /// Chunk ids among the hits that look like prompt injection.
    pub injection_suspected: Vec<String>,
    /// Of those, the ones kept out of the prompt.
    pub quarantined: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_injection: Option<QueryFlag>,
    /// Personal-data values replaced by placeholders before the provider saw them.
    pub pii_masked: usize,
    /// Citations removed because they named no source that was sent (or a hidden one).
    pub citations_removed: usize,
    pub unsupported_sentences: Vec<String>,
    pub unsupported_quotes: Vec<String>,
    /// Whether the model's answer was withheld (or had markers cut): the
    /// fact, never which check fired (the audit log has that).
    pub output_blocked: Vec<String>,
}

/// The response of `/v1/query` and `hort query`.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    pub answer: String,
    pub citations: Vec<Citation>,
    pub hits: Vec<Hit>,
    pub route: Route,
    pub flags: Flags,
    pub usage: Usage,
    /// Flags for the audit log only (which output check fired).
    #[serde(skip)]
    pub audit_flags: Vec<String>,
}

impl Answer {
    /// What the metrics count of this answer.
    pub fn facts(&self) -> crate::gateway::metrics::AnswerFacts<'_> {
        let f = &self.flags;
        crate::gateway::metrics::AnswerFacts {
            attempts: self
                .route
                .attempts
                .iter()
                .map(|a| (a.provider.as_str(), a.outcome.as_str(), a.ms))
                .collect(),
            provider: &self.route.provider,
            usage: &self.usage,
            injection_suspected: f.injection_suspected.len(),
            quarantined: f.quarantined.len(),
            query_injection: f.query_injection.is_some(),
            pii_masked: f.pii_masked,
            output_blocked: f.output_blocked.len(),
            citations_removed: f.citations_removed,
        }
    }
}

/// What a streaming client receives.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// A checked piece of the answer (whole sentences).
    Delta(String),
    /// Drop what was received so far: a provider failed mid-answer.
    Reset,
    /// The verified answer; it replaces the streamed text.
    Done(Box<Answer>),
}

pub struct Generator {
    chain: Vec<Arc<Slot>>,
    extractive: Arc<Slot>,
    routing: RoutingConfig,
    sanitize: SanitizeConfig,
    query_rules: Vec<(Regex, Classification)>,
    gateway: Arc<Gateway>,
}

fn refusal(lang: Language) -> &'static str {
    match lang {
        Language::German => {
            "Die Antwort wurde zurückgehalten, weil sie geschützte Inhalte enthielt. Bitte formulieren Sie die Frage neu."
        }
        Language::English => {
            "The answer was withheld because it contained protected content. Please rephrase the question."
        }
    }
}

impl Generator {
    pub fn from_config(cfg: &Config, gateway: Arc<Gateway>) -> Result<Generator, GenerateError> {
        let extractive = Arc::new(Slot::new(
            Arc::new(extractive::Extractive::default()),
            Policy::local_default(),
        ));
        let mut chain = Vec::new();
        for name in &cfg.routing.chain {
            if name == "extractive" {
                chain.push(extractive.clone());
                continue;
            }
            let p = cfg
                .providers
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| {
                    GenerateError::Config(format!("routing.chain names unknown provider {name:?}"))
                })?;
            let provider: Arc<dyn provider::Provider> = match p.kind {
                ProviderKind::Openai => Arc::new(openai::OpenAi::new(p)),
                ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(p)),
                ProviderKind::Extractive => Arc::new(extractive::Extractive::default()),
            };
            chain.push(Arc::new(Slot::new(provider, Policy::from_config(p))));
        }
        if chain.is_empty() {
            chain.push(extractive.clone());
        }
        let query_rules = cfg
            .routing
            .query_rules
            .iter()
            .map(|r| {
                Regex::new(&format!("(?i){}", r.pattern))
                    .map(|re| (re, r.level))
                    .map_err(|e| GenerateError::Config(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Generator {
            chain,
            extractive,
            routing: cfg.routing.clone(),
            sanitize: cfg.sanitize.clone(),
            query_rules,
            gateway,
        })
    }

    /// A generator over given providers (in chain order), e.g. custom ones
    /// or fakes in tests; routing and sanitizing settings come from `cfg`.
    pub fn with_providers(
        cfg: &Config,
        gateway: Arc<Gateway>,
        providers: Vec<(Arc<dyn provider::Provider>, Policy)>,
    ) -> Result<Generator, GenerateError> {
        let mut g = Generator::from_config(
            &Config {
                routing: RoutingConfig {
                    chain: Vec::new(),
                    ..cfg.routing.clone()
                },
                ..cfg.clone()
            },
            gateway,
        )?;
        g.chain = providers
            .into_iter()
            .map(|(p, pol)| Arc::new(Slot::new(p, pol)))
            .collect();
        Ok(g)
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The level of the question itself (rules, personal data).
    pub fn query_level(&self, question: &str) -> Option<Classification> {
        let mut level = self
            .query_rules
            .iter()
            .filter(|(re, _)| re.is_match(question))
            .map(|(_, l)| *l)
            .max();
        if let Some(l) = self.routing.pii_in_query {
            if !pii::find(question, &self.sanitize.pii_types).is_empty() {
                level = level.max(Some(l));
            }
        }
        level
    }

    fn masks(&self, locality: Locality) -> bool {
        match locality {
            Locality::Cloud => self.sanitize.pii_mask_cloud,
            Locality::Local => self.sanitize.pii_mask_local,
        }
    }

    /// Answers `question` for `principal` from `hits` (already access-filtered).
    pub async fn answer(
        &self,
        snap: &Arc<dyn IndexRead>,
        principal: &Principal,
        question: &str,
        hits: Vec<Hit>,
        stream: Option<UnboundedSender<StreamEvent>>,
    ) -> Result<Answer, GenerateError> {
        let lang = Language::detect(question);
        let mut flags = Flags::default();
        let q = injection::detect(question);
        if q.score >= self.sanitize.injection_threshold {
            let reasons: Vec<String> = q
                .reasons
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            if self.sanitize.on_query_injection == QueryInjectionAction::Refuse {
                return Err(GenerateError::QueryRefused(reasons.join(", ")));
            }
            flags.query_injection = Some(QueryFlag {
                score: q.score,
                reasons,
            });
        }
        // Sources: the hits; a quarantined one only without its injected
        // sentences (or not at all, if nothing clean is left).
        let mut redacted: Vec<Hit> = Vec::new();
        let mut order: Vec<Result<usize, usize>> = Vec::new(); // Ok(hit index) | Err(redacted index)
        for (i, h) in hits.iter().enumerate() {
            if let Some(inj) = &h.injection {
                flags.injection_suspected.push(h.chunk_id.clone());
                if inj.action == InjectionAction::Quarantine {
                    flags.quarantined.push(h.chunk_id.clone());
                    if let Some(clean) =
                        injection::redact(&h.text, self.sanitize.injection_threshold)
                    {
                        let mut r = h.clone();
                        r.text = clean;
                        redacted.push(r);
                        order.push(Err(redacted.len() - 1));
                    }
                    continue;
                }
            }
            order.push(Ok(i));
        }
        let sources: Vec<(usize, &Hit)> = order
            .iter()
            .enumerate()
            .map(|(k, o)| {
                (
                    k + 1,
                    match o {
                        Ok(i) => &hits[*i],
                        Err(j) => &redacted[*j],
                    },
                )
            })
            .collect();
        // Sensitivity: the highest level of anything a provider would see.
        let context_level = sources.iter().map(|(_, h)| h.classification).max();
        let sensitivity = context_level
            .max(self.query_level(question))
            .unwrap_or(Classification::Public);
        let local_only = self
            .routing
            .local_only_from
            .is_some_and(|t| sensitivity >= t);
        // Mask once; cloud requests get the masked text, local ones the raw text.
        let mut masker = Masker::new();
        let mut masked_count = 0;
        let mut raw_src = Vec::new();
        let mut masked_src = Vec::new();
        for (n, h) in &sources {
            let label = match h.page {
                Some(p) => format!("{}, page {p}", h.doc),
                None => h.doc.clone(),
            };
            let (mtext, c) = masker.mask(&h.text, &self.sanitize.pii_types);
            masked_count += c;
            raw_src.push(SourceText {
                n: *n,
                label: label.clone(),
                text: h.text.clone(),
            });
            masked_src.push(SourceText {
                n: *n,
                label,
                text: mtext,
            });
        }
        let (masked_question, qc) = masker.mask(question, &self.sanitize.pii_types);
        let spotlight = Spotlight::new();
        let system = system_prompt(lang, &spotlight);
        let guard = OutputGuard {
            view: snap.clone(),
            principal: principal.clone(),
            system: system.clone(),
            known: Arc::new(KnownRuns::of(
                std::iter::once(question).chain(hits.iter().map(|h| h.text.as_str())),
            )),
        };
        let build = |masked: bool, max_tokens: u32| -> (ChatRequest, Vec<usize>) {
            let (srcs, q) = if masked {
                (masked_src.clone(), masked_question.clone())
            } else {
                (raw_src.clone(), question.to_string())
            };
            let (user, kept) = assemble(&spotlight, srcs, &q, self.routing.max_context_tokens);
            let ns = kept.iter().map(|s| s.n).collect();
            (
                ChatRequest {
                    system: system.clone(),
                    user,
                    question: q,
                    sources: kept,
                    max_tokens,
                    temperature: 0.1,
                },
                ns,
            )
        };

        // The relay turns provider pieces into checked, unmasked sentences.
        let (piece_tx, relay) = match &stream {
            Some(out) => {
                let (tx, rx) = mpsc::unbounded_channel::<Piece>();
                let handle = tokio::spawn(relay_sentences(
                    rx,
                    out.clone(),
                    masker.clone(),
                    spotlight.clone(),
                    guard.clone(),
                ));
                (Some(tx), Some(handle))
            }
            None => (None, None),
        };

        let mut attempts: Vec<Attempt> = Vec::new();
        let mut budget_error: Option<BudgetExceeded> = None;
        let mut result = None;
        let mut tried_extractive = false;
        for slot in &self.chain {
            let p = &slot.provider;
            if local_only && p.locality() != Locality::Local {
                attempts.push(Attempt::skipped(
                    p.name(),
                    format!("context is {sensitivity}: local providers only"),
                ));
                continue;
            }
            let masked = self.masks(p.locality());
            let (req, ns) = build(masked, slot.policy.max_tokens);
            let (pin, pout) = p.prices();
            let worst = (estimate_tokens(&req.system) + estimate_tokens(&req.user)) as f64 / 1000.0
                * pin
                + req.max_tokens as f64 / 1000.0 * pout;
            if let Err(e) = self.gateway.check_budget(principal, worst) {
                attempts.push(Attempt::skipped(p.name(), e.to_string()));
                budget_error = Some(e);
                continue;
            }
            tried_extractive |= Arc::ptr_eq(slot, &self.extractive);
            if let Ok(c) = call_slot(slot, &req, piece_tx.as_ref(), &mut attempts).await {
                result = Some((slot.clone(), c, ns, masked));
                break;
            }
        }
        if result.is_none() && self.routing.extractive_fallback && !tried_extractive {
            let (req, ns) = build(false, 600);
            if let Ok(c) = call_slot(&self.extractive, &req, piece_tx.as_ref(), &mut attempts).await
            {
                result = Some((self.extractive.clone(), c, ns, false));
            }
        }
        drop(piece_tx);
        // What the stream withheld (of the last attempt) the answer withholds too.
        let mut streamed_block = None;
        if let Some(r) = relay {
            streamed_block = r.await.unwrap_or(None);
        }
        let Some((slot, completion, sent_ns, masked)) = result else {
            if let Some(e) = budget_error {
                return Err(GenerateError::Budget(e));
            }
            if local_only
                && !self
                    .chain
                    .iter()
                    .any(|s| s.provider.locality() == Locality::Local)
            {
                return Err(GenerateError::NoLocalProvider(sensitivity));
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
            return Err(GenerateError::AllFailed {
                public: what.join("; "),
                internal: internal_details(&attempts),
            });
        };
        let provider = slot.provider.clone();
        if masked {
            flags.pii_masked = masked_count + qc;
        }
        // Unmask, then check what came back.
        let mut text = masker.unmask(&completion.text);
        let mut audit_flags = Vec::new();
        if spotlight.leaked(&text) {
            flags.output_blocked.push(MARKERS_REMOVED.into());
            audit_flags.push("output_blocked:markers".to_string());
            text = text
                .lines()
                .filter(|l| !l.contains(spotlight.nonce()))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let block = match streamed_block {
            Some(b) => Some(b),
            None => guard.check_async(text.clone()).await,
        };
        if let Some(b) = block {
            flags.output_blocked.push(WITHHELD.into());
            audit_flags.push(b.flag().to_string());
            text = refusal(lang).to_string();
        }
        // Citations: only sources that were actually sent, and visible.
        let sent: Vec<Sent> = sources
            .iter()
            .filter(|(n, _)| sent_ns.contains(n))
            .map(|(n, h)| {
                // A redacted source: locate citations in the original chunk.
                let original = hits.iter().find(|o| o.id == h.id).unwrap_or(h);
                Sent {
                    n: *n,
                    hit: original.clone(),
                    text: h.text.clone(),
                }
            })
            .collect();
        let v = citations::verify(&text, &sent, |h| {
            AccessRule::new(&h.teams, h.classification)
                .map(|r| principal.can_see(Some(&r)))
                .unwrap_or(false)
        });
        flags.citations_removed = v.removed.len();
        // "Nothing found" needs no source.
        if v.answer != extractive::nothing_found(lang) {
            flags.unsupported_sentences = v.unsupported;
        }
        flags.unsupported_quotes = v.bad_quotes;
        let (pin, pout) = provider.prices();
        let usage = Usage {
            prompt_tokens: completion.prompt_tokens,
            completion_tokens: completion.completion_tokens,
            cost_usd: completion.prompt_tokens as f64 / 1000.0 * pin
                + completion.completion_tokens as f64 / 1000.0 * pout,
        };
        self.gateway
            .record(&principal.name, &principal.teams, provider.name(), &usage);
        let reason = if local_only {
            format!("context is {sensitivity}: local providers only")
        } else if attempts.iter().filter(|a| a.outcome != "ok").count() > 0 {
            "first available provider of the chain (after fallback)".to_string()
        } else {
            "first provider of the chain".to_string()
        };
        let answer = Answer {
            answer: v.answer,
            citations: v.citations,
            hits,
            route: Route {
                provider: provider.name().to_string(),
                locality: provider.locality(),
                reason,
                sensitivity,
                attempts,
            },
            flags,
            usage,
            audit_flags,
        };
        if let Some(out) = &stream {
            let _ = out.send(StreamEvent::Done(Box::new(answer.clone())));
        }
        Ok(answer)
    }
}

/// Forwards whole sentences, unmasked, without markers and checked: each
/// sentence is sent only if what the client would then hold passes the
/// output checks. Once a check fires, the client is told to drop what it
/// got (`reset`) and nothing more is streamed (the final answer is then the
/// refusal). A reset from the chain (another provider starts) starts over.
/// Returns the block of the last attempt, if one fired.
async fn relay_sentences(
    mut rx: mpsc::UnboundedReceiver<Piece>,
    out: UnboundedSender<StreamEvent>,
    masker: Masker,
    spotlight: Spotlight,
    guard: OutputGuard,
) -> Option<Block> {
    let mut buf = String::new();
    let mut shown = String::new();
    let mut blocked: Option<Block> = None;
    while let Some(p) = rx.recv().await {
        let head = match p {
            Piece::Reset => {
                buf.clear();
                shown.clear();
                blocked = None;
                let _ = out.send(StreamEvent::Reset);
                continue;
            }
            Piece::Text(t) => {
                buf.push_str(&t);
                // Up to the last sentence end followed by whitespace.
                let cut = buf
                    .char_indices()
                    .zip(buf.chars().skip(1))
                    .filter(|((_, c), next)| {
                        matches!(c, '.' | '!' | '?' | '\n') && next.is_whitespace()
                    })
                    .map(|((i, c), _)| i + c.len_utf8())
                    .last();
                match cut {
                    Some(i) => buf.drain(..i).collect::<String>(),
                    None => continue,
                }
            }
        };
        if blocked.is_none() {
            blocked = emit(&head, &mut shown, &out, &masker, &spotlight, &guard).await;
        }
    }
    if !buf.is_empty() && blocked.is_none() {
        blocked = emit(&buf, &mut shown, &out, &masker, &spotlight, &guard).await;
    }
    blocked
}

/// Sends one checked piece; on a block, tells the client to drop the stream.
async fn emit(
    piece: &str,
    shown: &mut String,
    out: &UnboundedSender<StreamEvent>,
    masker: &Masker,
    spotlight: &Spotlight,
    guard: &OutputGuard,
) -> Option<Block> {
    let t = masker.unmask(piece);
    if t.is_empty() || spotlight.leaked(&t) {
        return None;
    }
    let candidate = format!("{shown}{t}");
    if let Some(b) = guard.check_async(candidate.clone()).await {
        let _ = out.send(StreamEvent::Reset);
        return Some(b);
    }
    *shown = candidate;
    let _ = out.send(StreamEvent::Delta(t));
    None
}
