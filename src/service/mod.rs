//! The use cases, written once: search, ask (streamed or not), read a
//! document's page or all of it, list documents, upload, delete, usage,
//! and the agents' guards (grants, kill switch, limits, approvals).
//! Validation, budgets, reranking, the access checks of writes and the
//! audit record are done here, for every front end alike: the HTTP API,
//! its OpenAI-compatible endpoint, MCP and the CLI are thin adapters that
//! turn their protocol into these calls and their answers back.
//!
//! A [`Service`] is one node: the configured store and gateway (opened by
//! their factories — nothing here names a backend), the embedder, the
//! generator and the reranker.

mod agents;
pub mod approvals;
mod call;
mod documents;
mod error;
mod http_tools;
pub mod ledger;
pub mod runs;
mod search;
pub mod tools;

use std::path::Path;
use std::sync::Arc;

use crate::acl::Principal;
use crate::config::Config;
use crate::embed::Embedder;
use crate::gateway::metrics::Metrics;
use crate::gateway::{BudgetStatus, Gateway, SpendRow};
use crate::generate::Generator;
use crate::ingest::IngestOptions;
use crate::retrieve::rerank::{CrossEncoder, Reranker};
use crate::retrieve::SearchParams;
use crate::store::{IndexRead, Spec, Store, StoreStats};

pub use agents::{allowed_tools, decide, KillSwitch};
pub use call::Call;
pub use documents::{Passage, Removed, UploadRequest, Uploaded, WholeDocument, WriteEffect};
pub use error::{Error, OpenError};
pub use search::{AppliedFilter, Found, Query, SearchExplain};

/// What `Service::audit_trail` found.
#[derive(Debug, serde::Serialize)]
pub struct AuditTrail {
    /// Newest first.
    pub recent: Vec<crate::gateway::audit::AuditRecord>,
    /// Why the chain refuses appends (it was cut or edited), if it does.
    pub refusing: Option<String>,
    /// A full check of the chain (admins, on request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<AuditCheck>,
}

/// The result of walking the whole chain.
#[derive(Debug, serde::Serialize)]
pub struct AuditCheck {
    /// Records read.
    pub records: u64,
    /// No problem found.
    pub intact: bool,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

/// One node: what every use case needs.
pub struct Service {
    config: Config,
    store: Arc<dyn Store>,
    embedder: Arc<dyn Embedder>,
    reranker: Option<Arc<dyn Reranker>>,
    generator: Generator,
    gateway: Arc<Gateway>,
    metrics: Metrics,
    params: SearchParams,
    ingest: IngestOptions,
    /// The injection detector for this node's embedding model (the one
    /// that screened the chunks at ingest), for text read at query time.
    screen: crate::ingest::screen::Screen,
    /// Uploads and deletions of this node, one at a time.
    writer: tokio::sync::Mutex<()>,
    kill_switch: KillSwitch,
    agent_ledger: ledger::AgentLedger,
}

/// The chunker's fingerprint and the model, as the store must know them.
pub fn store_spec(cfg: &Config, embedder: &dyn Embedder) -> Spec {
    let opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    Spec {
        embedder: crate::embed::space::index_id(embedder.id()),
        dim: embedder.dim(),
        chunker: opts.chunk.fingerprint(),
    }
}

impl Service {
    /// Opens the configured store (the embedded index at `index`, created
    /// with `create` if there is none; or the database) and books (usage
    /// journal and audit log, or the database's), and builds the generator
    /// and reranker. A cut or edited audit log refuses to open.
    pub fn open(
        cfg: &Config,
        embedder: Arc<dyn Embedder>,
        index: &Path,
        create: bool,
    ) -> Result<Service, OpenError> {
        let store = crate::store::open(cfg, index, &store_spec(cfg, embedder.as_ref()), create)?;
        let gateway =
            Arc::new(crate::gateway::open(cfg)?.with_cache(crate::gateway::open_cache(cfg, index)));
        let generator = Generator::from_config(cfg, gateway.clone())?;
        let reranker: Option<Arc<dyn Reranker>> = match &cfg.retrieve.reranker {
            None => None,
            Some(dir) => Some(Arc::new(
                CrossEncoder::load(
                    &cfg.resolve(dir),
                    &crate::embed::runtime_path(&cfg.embed, |p| cfg.resolve(p)),
                    512,
                    crate::embed::Layout::for_threads(cfg.embed.threads).threads(),
                )
                .map_err(|e| OpenError::Reranker(e.to_string()))?,
            )),
        };
        let mut ingest = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
        ingest.progress = false;
        let screen = crate::ingest::screen::Screen::for_model(embedder.id());
        let params = SearchParams::open(cfg)?;
        Ok(Service {
            config: cfg.clone(),
            store,
            screen,
            embedder,
            reranker,
            generator,
            gateway,
            metrics: Metrics::default(),
            params,
            ingest,
            writer: tokio::sync::Mutex::new(()),
            kill_switch: KillSwitch::new(cfg),
            agent_ledger: ledger::AgentLedger::default(),
        })
    }

    /// Answers through these providers instead of the configured chain
    /// (tests and embedders of the library).
    pub fn with_generator(mut self, generator: Generator) -> Service {
        self.generator = generator;
        self
    }

    /// Parses uploads with these options (e.g. PDFs in-process in tests).
    pub fn with_ingest_options(mut self, mut opts: IngestOptions) -> Service {
        opts.progress = false;
        self.ingest = opts;
        self
    }

    /// Reads what searches will need ahead of the first one, in the
    /// background (the German–English dictionary): for long-running front
    /// ends (the HTTP server, MCP), not for one-shot commands.
    pub fn warm_up(&self) {
        if let Some(d) = self.params.dictionary {
            d.prefetch();
        }
        self.store.warm_up();
    }

    /// What a search may still have to wait for ([`Service::warm_up`] reads
    /// it): the dictionary, until it is read (or found unreadable), and on
    /// PostgreSQL the planner's chunk counts. A load balancer sends
    /// questions to a node once this is empty (`/readyz`).
    pub fn waiting_for(&self) -> Vec<&'static str> {
        let mut waiting = Vec::new();
        if self.params.dictionary.is_some_and(|d| !d.is_read()) {
            waiting.push("dictionary");
        }
        waiting.extend(self.store.waiting_for());
        waiting
    }

    /// The configuration the service was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The gateway: limits, budgets, usage and audit.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The store's backend (`embedded` or `postgres`), for status pages.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// What queries read now.
    pub fn reader(&self) -> Arc<dyn IndexRead> {
        self.store.reader()
    }

    /// What the store holds.
    pub fn stats(&self) -> Result<StoreStats, Error> {
        Ok(self.store.reader().stats()?)
    }

    /// Picks up commits of other processes (ingests); true if the view changed.
    pub fn refresh(&self) -> Result<bool, Error> {
        Ok(self.store.refresh()?)
    }

    /// The principal of the configuration called `name`, with its roles
    /// (for callers the operator names: `hort query --as`, `hort mcp --as`).
    pub fn principal(&self, name: &str) -> Option<(Principal, Vec<String>)> {
        self.config
            .principals
            .iter()
            .find(|p| p.name == name)
            .map(|p| {
                (
                    Principal::new(&p.name, &p.teams, p.clearance),
                    p.roles.clone(),
                )
            })
    }

    /// Takes one request from the rate limits of `who` and its teams.
    pub fn admit(&self, who: &Principal, jwt_rpm: Option<u32>) -> Result<(), Error> {
        self.gateway.check_rate(who, jwt_rpm).map_err(|e| {
            self.metrics
                .rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            e.into()
        })
    }

    /// Spending that `who` may see: its own and its teams' (admins: all).
    pub fn usage(&self, who: &Principal, roles: &[String]) -> Vec<SpendRow> {
        use crate::gateway::AccountKind;
        let admin = roles.iter().any(|r| r == "admin");
        self.gateway
            .all_spending()
            .into_iter()
            .filter(|r| {
                admin
                    || match r.kind {
                        AccountKind::Principal => r.name == who.name,
                        AccountKind::Team => who.teams.contains(&r.name),
                        AccountKind::Provider => false,
                    }
            })
            .collect()
    }

    /// Budgets against this month's spending that `who` may see: its own
    /// and its teams' (admins: every configured budget).
    pub fn budgets(&self, who: &Principal, roles: &[String]) -> Vec<BudgetStatus> {
        use crate::gateway::AccountKind;
        let admin = roles.iter().any(|r| r == "admin");
        self.gateway
            .budget_status()
            .into_iter()
            .filter(|b| {
                admin
                    || match b.kind {
                        AccountKind::Principal => b.name == who.name,
                        AccountKind::Team => who.teams.contains(&b.name),
                        AccountKind::Provider => false,
                    }
            })
            .collect()
    }

    /// The newest audit records `who` may read — its own; admins anyone's
    /// (`of` narrows to one principal) — and the chain's state: whether it
    /// takes appends, and for admins with `verify` a full check.
    pub async fn audit_trail(
        self: &Arc<Self>,
        who: &Principal,
        roles: &[String],
        of: Option<String>,
        limit: usize,
        verify: bool,
    ) -> Result<AuditTrail, Error> {
        let admin = roles.iter().any(|r| r == "admin");
        let of = match of {
            Some(p) if !admin && p != who.name => {
                return Err(Error::Forbidden(
                    "only admins read other principals' audit records".into(),
                ))
            }
            Some(p) => Some(p),
            None if admin => None,
            None => Some(who.name.clone()),
        };
        if limit == 0 || limit > 500 {
            return Err(Error::BadRequest("limit must be between 1 and 500".into()));
        }
        let svc = self.clone();
        tokio::task::spawn_blocking(move || {
            let gw = svc.gateway();
            let mut recent = gw.recent_audit(of.as_deref(), limit)?;
            if !admin {
                // Document names may have been visible then and not now
                // (access revoked): they stay with admins, like provider
                // failure details.
                for r in &mut recent {
                    r.provider_errors.clear();
                    r.docs.clear();
                    r.chunks.clear();
                }
            }
            let verified = if admin && verify {
                gw.verify_audit(true)?.map(|v| AuditCheck {
                    records: v.records,
                    intact: v.problems.is_empty(),
                    problems: v.problems,
                })
            } else {
                None
            };
            Ok(AuditTrail {
                recent,
                refusing: gw.audit_broken(),
                verified,
            })
        })
        .await?
    }

    /// Makes pending audit and usage records durable (at shutdown).
    pub fn flush(&self) {
        self.gateway.flush();
    }
}
