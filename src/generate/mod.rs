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

mod answer;
pub mod anthropic;
pub mod citations;
pub mod extractive;
mod guard;
mod http;
pub mod openai;
pub mod prompt;
pub mod provider;
pub mod router;
pub mod tools;

use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use crate::acl::Classification;
use crate::config::{Config, Locality, ProviderKind, RoutingConfig, SanitizeConfig};
use crate::gateway::cache::CacheOutcome;
use crate::gateway::{BudgetExceeded, Gateway, Usage};
use crate::retrieve::Hit;
use crate::sanitize::pii;
use citations::Citation;
use prompt::Language;
use router::{Attempt, Group, Link, Policy, Slot};

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
    /// The answer repeated the system prompt.
    SystemPrompt,
    /// The answer repeated text of a document the asker may not see.
    HiddenText,
    /// The answer matched a rule of the content policy.
    Policy,
}

impl Block {
    /// The audit flag.
    pub fn flag(self) -> &'static str {
        match self {
            Block::SystemPrompt => "output_blocked:system_prompt",
            Block::HiddenText => "output_blocked:hidden_text",
            Block::Policy => "output_blocked:content_policy",
        }
    }
}

/// What the asker reads in `flags.output_blocked` for any withheld answer.
pub const WITHHELD: &str = "the answer was withheld by an output check";
/// … and when only repeated source markers were cut from it.
pub const MARKERS_REMOVED: &str = "source markers were removed from the answer";

/// Why no answer was given.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The question looks like a prompt injection and the policy refuses it.
    #[error("the question was refused: it looks like a prompt injection ({0})")]
    QueryRefused(String),
    /// Only local providers may see the context, and none answered or is configured.
    #[error(
        "the context is {0}: only local providers may see it, and none is configured or available"
    )]
    NoLocalProvider(Classification),
    /// A budget is spent.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    /// `public` names each provider and the kind of its failure; `internal`
    /// holds the whole errors (URLs, bodies) for logs and the audit log.
    #[error("every provider failed ({public})")]
    AllFailed {
        /// Each provider and the kind of its failure (what the caller may read).
        public: String,
        /// The whole errors (for logs and the audit log).
        internal: Vec<String>,
    },
    /// The provider configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),
}

/// Which provider answered, and why that one.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Route {
    /// The provider that answered.
    pub provider: String,
    /// Where it runs.
    pub locality: Locality,
    /// Why it was chosen.
    pub reason: String,
    /// The highest classification of the context (and the question).
    pub sensitivity: Classification,
    /// Every provider tried, in order, with its outcome.
    pub attempts: Vec<Attempt>,
}

/// How the question itself scored as a prompt injection.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueryFlag {
    /// The detector's score (0–1).
    pub score: f32,
    /// The rule families that matched.
    pub reasons: Vec<String>,
}

/// What the answer's checks found.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Flags {
    /// Chunk ids among the hits that look like prompt injection.
    pub injection_suspected: Vec<String>,
    /// Of those, the ones kept out of the prompt.
    pub quarantined: Vec<String>,
    /// Set when the question itself looks like an injection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_injection: Option<QueryFlag>,
    /// Personal-data values replaced by placeholders before the provider saw them.
    pub pii_masked: usize,
    /// Citations removed because they named no source that was sent (or a hidden one).
    pub citations_removed: usize,
    /// Answer sentences no cited source supports.
    pub unsupported_sentences: Vec<String>,
    /// Quotes not found in the cited sources.
    pub unsupported_quotes: Vec<String>,
    /// Whether the model's answer was withheld (or had markers cut): the
    /// fact, never which check fired (the audit log has that).
    pub output_blocked: Vec<String>,
}

/// The response of `/v1/query` and `hort query`.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// The answer text, with citations as `[n]`.
    pub answer: String,
    /// The citations that hold.
    pub citations: Vec<Citation>,
    /// The hits the answer was made from.
    pub hits: Vec<Hit>,
    /// Which provider answered, and why.
    pub route: Route,
    /// What the checks found.
    pub flags: Flags,
    /// Tokens and cost (zero when the answer came from the cache).
    pub usage: Usage,
    /// What the answer cache did (absent when there is no cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheOutcome>,
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

/// The provider of a `[[providers]]` entry (the workflow runner's agents
/// call theirs directly, with tools).
pub fn provider_for(p: &crate::config::ProviderConfig) -> Arc<dyn provider::Provider> {
    match p.kind {
        ProviderKind::Openai => Arc::new(openai::OpenAi::new(p)),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(p)),
        ProviderKind::Extractive => Arc::new(extractive::Extractive::default()),
    }
}

/// Answers questions from hits through the configured provider chain.
pub struct Generator {
    chain: Vec<Link>,
    extractive: Arc<Slot>,
    routing: RoutingConfig,
    sanitize: SanitizeConfig,
    query_rules: Vec<(Regex, Classification)>,
    gateway: Arc<Gateway>,
    /// What the answer cache's context must know of the chain and the
    /// policies (a change makes every old entry a miss).
    fingerprint: String,
}

/// The version of the prompts hort builds: raise it when `prompt.rs`
/// changes what a provider is sent, or the offline answerer what it makes
/// of it, so cached answers to the old prompt are not served (4: the
/// offline answerer reads sources through the question's translation).
pub const PROMPT_VERSION: &str = "prompt-4";

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
    /// The generator of the configuration's providers and routing; usage is booked on `gateway`.
    pub fn from_config(cfg: &Config, gateway: Arc<Gateway>) -> Result<Generator, GenerateError> {
        let extractive = Arc::new(Slot::new(
            Arc::new(extractive::Extractive::default()),
            Policy::local_default(),
        ));
        let mut slots: std::collections::HashMap<&str, Arc<Slot>> = Default::default();
        let mut slot = |name: &str| -> Result<Arc<Slot>, GenerateError> {
            if name == "extractive" {
                return Ok(extractive.clone());
            }
            if let Some(s) = slots.get(name) {
                return Ok(s.clone());
            }
            let p = cfg
                .providers
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| {
                    GenerateError::Config(format!("routing.chain names unknown provider {name:?}"))
                })?;
            let provider: Arc<dyn provider::Provider> = match p.kind {
                ProviderKind::Openai => Arc::new(openai::OpenAi::new(p)),
                ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(p)),
                ProviderKind::Extractive => Arc::new(extractive::Extractive::default()),
            };
            let s = Arc::new(Slot::new(provider, Policy::from_config(p)));
            slots.insert(p.name.as_str(), s.clone());
            Ok(s)
        };
        let mut chain = Vec::new();
        for name in &cfg.routing.chain {
            match cfg.routing.groups.iter().find(|g| &g.name == name) {
                Some(g) => {
                    let members = g
                        .providers
                        .iter()
                        .map(|m| slot(m))
                        .collect::<Result<Vec<_>, _>>()?;
                    chain.push(Link::Group(Group::new(&g.name, g.strategy, members)));
                }
                None => chain.push(Link::One(slot(name)?)),
            }
        }
        if chain.is_empty() {
            chain.push(Link::One(extractive.clone()));
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
        let mut g = Generator {
            chain,
            extractive,
            routing: cfg.routing.clone(),
            sanitize: cfg.sanitize.clone(),
            query_rules,
            gateway,
            fingerprint: String::new(),
        };
        g.fingerprint = g.fingerprint_now();
        Ok(g)
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
            .map(|(p, pol)| Link::One(Arc::new(Slot::new(p, pol))))
            .collect();
        g.fingerprint = g.fingerprint_now();
        Ok(g)
    }

    /// A generator whose chain is `links` (tests of balancing).
    pub fn with_links(
        cfg: &Config,
        gateway: Arc<Gateway>,
        links: Vec<Link>,
    ) -> Result<Generator, GenerateError> {
        let mut g = Generator::with_providers(cfg, gateway, Vec::new())?;
        g.chain = links;
        g.fingerprint = g.fingerprint_now();
        Ok(g)
    }

    /// The chain, the routing and sanitizing settings, the content policy
    /// and the prompt's version, as one string for the cache's context.
    fn fingerprint_now(&self) -> String {
        let links: Vec<String> = self.chain.iter().map(Link::fingerprint).collect();
        format!(
            "{PROMPT_VERSION}\u{1e}{}\u{1e}{:?}\u{1e}{:?}\u{1e}{}",
            links.join("\u{1f}"),
            self.routing,
            self.sanitize,
            self.gateway.policy().fingerprint()
        )
    }

    /// Every provider the chain may call (group members included).
    fn slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.chain.iter().flat_map(|l| match l {
            Link::One(s) => std::slice::from_ref(s).iter(),
            Link::Group(g) => g.members.iter(),
        })
    }

    /// The gateway usage is booked on.
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
}
