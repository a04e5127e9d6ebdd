//! Search and ask: validation, the access-filtered hybrid search (off the
//! async runtime: embedding and search are CPU work), the optional
//! reranker, budgets, generation, metrics and the audit record.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::{Call, Error, Service};
use crate::acl::Principal;
use crate::config::PolicyTarget;
use crate::gateway::cache::CacheScope;
use crate::generate::{Answer, GenerateError, StreamEvent};
use crate::retrieve::{self, Hit, Stages};
use crate::store::docfilter::DocFilter;
use crate::store::IndexRead;

/// A question and how to search for it.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The question.
    pub text: &'a str,
    /// Hits wanted (default `[retrieve] k`, at most `[server] max_k`).
    pub k: Option<usize>,
    /// A metadata filter on documents.
    pub filter: Option<&'a DocFilter>,
}

/// The hits of a search and the view they came from (which the generator's
/// output checks read again).
pub struct Found {
    /// The view the hits came from (one snapshot for the whole request).
    pub view: Arc<dyn IndexRead>,
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// Where the search's time went.
    pub stages: Stages,
    /// The whole search, off the runtime, in milliseconds.
    pub search_ms: f64,
    /// How far behind the latest write the data searched may be (a
    /// streaming replica's lag; zero on the primary and the embedded index).
    pub staleness: std::time::Duration,
    /// Both sides' candidate lists and the plan (its `hits` moved to
    /// `hits` above): kept so that `Service::explain` can say why, when asked.
    evidence: retrieve::SearchResult,
    /// Whether a cross-encoder reordered the hits.
    reranked: bool,
}

/// Why a search's hits ranked as they did, and the filters it ran with.
#[derive(Debug, serde::Serialize)]
pub struct SearchExplain {
    /// Both sides' evidence per hit, fusion and plan.
    #[serde(flatten)]
    pub ranking: retrieve::Explain,
    /// The filters applied inside both searches.
    pub filter: AppliedFilter,
}

/// The filters a search ran with: the caller's own access and the request's
/// metadata filter.
#[derive(Debug, serde::Serialize)]
pub struct AppliedFilter {
    /// Documents shared with one of these teams …
    pub teams: Vec<String>,
    /// … classified at most this.
    pub clearance: crate::acl::Classification,
    /// The metadata filter, if any.
    pub docs: Option<DocFilter>,
}

impl Service {
    /// The access-filtered hits of `q` for `who`.
    pub async fn search(
        self: &Arc<Self>,
        call: &Call,
        who: &Principal,
        q: Query<'_>,
    ) -> Result<Found, Error> {
        call.set_question(q.text);
        let k = q.k.unwrap_or(self.params.k);
        let max_k = self.config.server.max_k;
        if k == 0 || k > max_k {
            return Err(Error::BadRequest(format!(
                "k must be between 1 and {max_k}"
            )));
        }
        if q.text.trim().is_empty() {
            return Err(Error::BadRequest("query must not be empty".into()));
        }
        let max_chars = self.config.server.max_query_chars;
        if q.text.chars().count() > max_chars {
            return Err(Error::BadRequest(format!(
                "query is longer than {max_chars} characters"
            )));
        }
        let docs = match q.filter {
            Some(f) => Some(f.compile().map_err(|e| Error::BadRequest(e.to_string()))?),
            None => None,
        };
        let svc = self.clone();
        let principal = who.clone();
        let text = q.text.to_string();
        let found = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let ms = move || started.elapsed().as_secs_f64() * 1000.0;
            let view = svc.store.reader();
            // Read once, before the search: the bound holds for what follows.
            let staleness = view.staleness();
            let r = retrieve::Request {
                query: &text,
                k,
                docs: docs.as_ref(),
            };
            let Some(rr) = &svc.reranker else {
                let mut evidence = retrieve::search(
                    view.as_ref(),
                    svc.embedder.as_ref(),
                    &principal,
                    &r,
                    &svc.params,
                )?;
                return Ok::<_, Error>(Found {
                    view,
                    hits: std::mem::take(&mut evidence.hits),
                    stages: evidence.stages,
                    search_ms: ms(),
                    staleness,
                    evidence,
                    reranked: false,
                });
            };
            // More candidates for the cross-encoder to reorder, then k.
            let wide = retrieve::Request {
                k: k.max(svc.config.retrieve.rerank_candidates),
                ..r
            };
            let mut evidence = retrieve::search(
                view.as_ref(),
                svc.embedder.as_ref(),
                &principal,
                &wide,
                &svc.params,
            )?;
            let hits =
                retrieve::rerank::rerank(rr.as_ref(), &text, std::mem::take(&mut evidence.hits), k)
                    .map_err(|e| Error::Internal(format!("reranker: {e}")))?;
            Ok(Found {
                view,
                hits,
                stages: evidence.stages,
                search_ms: ms(),
                staleness,
                evidence,
                reranked: true,
            })
        })
        .await??;
        call.set_hits(&found.hits);
        Ok(found)
    }

    /// Why `found`'s hits ranked as they did — each hit's evidence on both
    /// sides, fusion and plan — and the filters applied inside both searches
    /// (`who`'s access, the request's metadata `filter`). Built only when a
    /// caller asks (search testing), from what the search kept.
    pub fn explain(
        &self,
        found: &Found,
        who: &Principal,
        filter: Option<&DocFilter>,
    ) -> SearchExplain {
        SearchExplain {
            ranking: retrieve::Explain::of(
                &found.evidence,
                &found.hits,
                &self.params,
                found.reranked,
            ),
            filter: AppliedFilter {
                teams: who.teams.clone(),
                clearance: who.clearance,
                docs: filter.cloned(),
            },
        }
    }

    /// A cited answer to `q` for `who`, through the provider chain; with
    /// `stream`, checked sentences are sent as they come.
    pub async fn ask(
        self: &Arc<Self>,
        call: &Call,
        who: &Principal,
        q: Query<'_>,
        stream: Option<UnboundedSender<StreamEvent>>,
    ) -> Result<Answer, Error> {
        call.set_question(q.text);
        if let Some(d) = self.gateway.policy().check(q.text, PolicyTarget::Question) {
            self.metrics.policy_refused.fetch_add(1, Ordering::Relaxed);
            call.add_flag(format!("content_policy:question:{}", d.rule));
            return Err(Error::Refused(d.message));
        }
        self.gateway.check_spent(who).map_err(|e| {
            self.metrics.budget_refused.fetch_add(1, Ordering::Relaxed);
            Error::from(e)
        })?;
        // The question is screened by the rules and the learned head, on
        // the blocking pool while the search runs beside it.
        let (found, screened) = tokio::join!(
            self.search(call, who, q),
            self.detect_injection(q.text.to_string())
        );
        let found = found?;
        let scope = self.cache_scope(who, q.text).await;
        // The search translated the question (so the dictionary is read):
        // the offline answerer reads the sources with that translation.
        let senses = found.evidence.translated_from.and_then(|asked| {
            let lex = self.params.dictionary?.get()?;
            Some(Arc::new(lex.senses(q.text, asked)))
        });
        let answer = self
            .generator
            .answer_cached(
                &found.view,
                who,
                q.text,
                Some(screened),
                found.hits,
                senses,
                stream,
                &scope,
            )
            .await
            .map_err(|e| {
                if let GenerateError::AllFailed { internal, .. } = &e {
                    call.set_provider_errors(internal.clone());
                }
                if let GenerateError::Budget(_) = &e {
                    self.metrics.budget_refused.fetch_add(1, Ordering::Relaxed);
                }
                Error::from(e)
            })?;
        self.metrics.observe_answer(&answer.facts());
        call.set_answer(&answer);
        Ok(answer)
    }

    /// How the answer cache treats `who`: not at all if the cache is off or
    /// one of its teams opted out; semantically among the teams that opted
    /// in (with the question's embedding, which the search just computed
    /// and the embedder's question cache still holds).
    async fn cache_scope(self: &Arc<Self>, who: &Principal, question: &str) -> CacheScope {
        let teams = &self.config.teams;
        let opted_out = who
            .teams
            .iter()
            .any(|t| teams.iter().any(|c| &c.name == t && !c.answer_cache));
        if self.gateway.cache().is_none() || opted_out {
            return CacheScope::default();
        }
        let semantic_teams: Vec<String> = who
            .teams
            .iter()
            .filter(|t| teams.iter().any(|c| &c.name == *t && c.semantic_cache))
            .cloned()
            .collect();
        // A question with personal data is never matched by meaning: its
        // values would not be the cached question's.
        let pii = || {
            !crate::sanitize::pii::find(question, &crate::sanitize::pii::PiiKind::ALL).is_empty()
        };
        let embedding = if semantic_teams.is_empty() || pii() {
            None
        } else {
            let (svc, q) = (self.clone(), question.to_string());
            tokio::task::spawn_blocking(move || svc.embedder.embed_query(&q).ok())
                .await
                .ok()
                .flatten()
        };
        CacheScope {
            enabled: true,
            semantic_teams: if embedding.is_some() {
                semantic_teams
            } else {
                Vec::new()
            },
            embedding,
            model: Some(self.embedder.id().to_string()),
        }
    }
}
