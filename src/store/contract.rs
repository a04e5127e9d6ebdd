//! The storage contract: what every backend promises, written down once.
//! Code above `store` (retrieval, generation, the service, the front ends)
//! sees only these traits and the records of [`super::record`]; one factory
//! ([`super::open`]) picks the backend from the configuration.
//!
//! **Reading** ([`IndexRead`]). One value is one consistent view: on the
//! embedded index a snapshot of one commit (every call on it sees the same
//! generation), on PostgreSQL the database (each call its own transaction).
//! Every method that takes a principal returns only what that principal may
//! see — `teams ∩ doc.teams ≠ ∅ ∧ clearance ≥ classification`, and nothing
//! without a rule — and applies it *inside* the search, never after top-k.
//! The methods that take no principal ([`IndexRead::rules_at`],
//! [`IndexRead::export`]) serve checks and copies, never answers.
//!
//! **Writing** ([`IndexWrite`]). One writer per store at a time on the
//! embedded index (an exclusive lock for the writer's life); on PostgreSQL
//! one transaction per writer, serialised per folder (`root`), so ingests of
//! different folders run at once. A document is identified by
//! `(root, path)`; `put` adds or replaces it. Nothing a writer does is seen
//! by readers before [`IndexWrite::commit`], which makes everything since the
//! last commit durable as one step — except that the embedded writer also
//! commits each full segment on its own (an interrupted ingest keeps what it
//! finished). A writer dropped without a commit leaves the store as it was
//! at its last commit.

use std::sync::Arc;

use super::docfilter::CompiledDocFilter;
use super::keyword::KeywordQuery;
use super::record::{
    ChunkHit, ChunkVerdict, DocSummary, FailedFile, NewDocument, Pages, RuleAt, StoreStats,
    StoredDoc, VectorParams, VectorPlan,
};
use super::StoreError;
use crate::acl::{AccessRule, Principal};

/// (chunk id, score), best first.
pub type Scored = Vec<(u64, f32)>;

/// The read side of a store: one consistent view.
pub trait IndexRead: Send + Sync {
    /// The model that made the vectors, and their dimension.
    fn model(&self) -> (String, usize);

    /// Counts for status pages and metrics.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// How far behind the latest write this view's reads may be: zero for
    /// the embedded index and a database primary, up to the configured
    /// bound for a streaming replica (reported with search results).
    fn staleness(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Reads everything stored and checks it against its checksums (where
    /// the backend keeps any; the database checks its own pages).
    fn verify_files(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The `want` nearest chunks to `query` (cosine similarity) that
    /// `who` may see and `docs` admits, with how each part was planned.
    fn vector_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
    ) -> Result<(Scored, Vec<VectorPlan>), StoreError>;

    /// The `want` best keyword matches of `query` that `who` may see and
    /// `docs` admits (BM25 on the embedded index).
    fn keyword_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &KeywordQuery,
        want: usize,
    ) -> Result<Scored, StoreError>;

    /// The chunks `ids` that `who` may see and `docs` admits, in the order
    /// asked; others are simply absent. This is the second, independent
    /// access check of every hit.
    fn chunks(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
    ) -> Result<Vec<ChunkHit>, StoreError>;

    /// Texts of up to `n` chunks that `who` may *not* see and that share
    /// words with `text`: for checking that an answer carries no hidden
    /// text, never for answering.
    fn hidden_texts(
        &self,
        who: &Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Every document `who` may see, by path.
    fn documents(&self, who: &Principal) -> Result<Vec<DocSummary>, StoreError>;

    /// Page `page` (1-based) of the document at `path`, or all its pages
    /// (`None`), if `who` may see it.
    fn pages(&self, who: &Principal, path: &str, page: Option<u32>) -> Result<Pages, StoreError>;

    /// Every document at `path`, in any folder, with its rule, whoever may
    /// see it: what a write there would replace or shadow.
    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, StoreError>;

    /// Up to `n` documents with their pages, chunks and vectors, in id
    /// order from id `from` on (for copying a store; no principal applies).
    fn export(&self, from: u64, n: usize) -> Result<Vec<(u64, NewDocument)>, StoreError>;

    /// The files the latest ingest of each folder could not read (for
    /// operators: no principal applies, the caller checks the role).
    fn failures(&self) -> Result<Vec<FailedFile>, StoreError>;
}

/// What compaction did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompactStats {
    /// Segments merged into new ones.
    pub merged_segments: usize,
    /// Chunks of removed documents dropped.
    pub dropped_chunks: usize,
}

/// The write side of a store (see the module docs for what commit means).
pub trait IndexWrite: Send {
    /// The stored documents of `root` (an ingested folder, or the uploads).
    fn stored(&mut self, root: &str) -> Result<Vec<StoredDoc>, StoreError>;

    /// The texts of a stored document's chunks, in order.
    fn chunk_texts(&mut self, id: u64) -> Result<Vec<String>, StoreError>;

    /// True when the stored chunks were cut with other chunking parameters
    /// (then everything is chunked and embedded again).
    fn chunker_changed(&self) -> bool;

    /// The injection detector version the stored verdicts come from.
    fn detector(&self) -> u32;

    /// Records the detector version of the stored verdicts.
    fn set_detector(&mut self, version: u32) -> Result<(), StoreError>;

    /// A hint that about `docs` documents will be put before the commit
    /// (PostgreSQL builds its vector index once after a large first load).
    fn expect(&mut self, docs: usize) -> Result<(), StoreError> {
        let _ = docs;
        Ok(())
    }

    /// Adds the document, or replaces the one at its `(root, path)`.
    fn put(&mut self, doc: NewDocument) -> Result<(), StoreError>;

    /// Changes who may see a document, without touching its vectors.
    fn set_access(
        &mut self,
        id: u64,
        access: Option<AccessRule>,
        rule_source: Option<String>,
    ) -> Result<(), StoreError>;

    /// Replaces a document's stored injection verdicts.
    fn set_verdicts(&mut self, id: u64, flagged: Vec<ChunkVerdict>) -> Result<(), StoreError>;

    /// Records that an unchanged file was looked at again.
    fn touch(
        &mut self,
        id: u64,
        size: u64,
        mtime_ns: i64,
        checked_at_ns: i64,
    ) -> Result<(), StoreError>;

    /// Removes a document; `false` if there was none with that id.
    fn remove(&mut self, id: u64) -> Result<bool, StoreError>;

    /// Replaces the failed files recorded for `root` (durable with the
    /// next commit).
    fn set_failures(&mut self, root: &str, failed: Vec<FailedFile>) -> Result<(), StoreError>;

    /// Tidies storage (the embedded index merges and rewrites segments;
    /// PostgreSQL has nothing to do). Part of the next commit.
    fn compact(&mut self, force: bool) -> Result<CompactStats, StoreError>;

    /// Makes everything since the last commit durable and visible; returns
    /// the new generation (PostgreSQL: 0).
    fn commit(&mut self) -> Result<u64, StoreError>;
}

/// An opened store: hands out views and writers.
pub trait Store: Send + Sync {
    /// `embedded` or `postgres`, for messages.
    fn backend(&self) -> &'static str;

    /// What queries read now.
    fn reader(&self) -> Arc<dyn IndexRead>;

    /// Picks up commits of other processes; true if the view changed.
    fn refresh(&self) -> Result<bool, StoreError>;

    /// A writer (the embedded index allows one at a time: `Locked` if
    /// another process holds it).
    fn writer(&self) -> Result<Box<dyn IndexWrite>, StoreError>;

    /// Reads ahead, in the background, what a node's first search would
    /// otherwise wait for (PostgreSQL: the planner's chunk counts; the
    /// embedded index opens with its statistics). For serving nodes.
    fn warm_up(&self) {}

    /// What a search would still wait for, until [`Store::warm_up`] has read
    /// it (for `/readyz`).
    fn waiting_for(&self) -> Option<&'static str> {
        None
    }
}
