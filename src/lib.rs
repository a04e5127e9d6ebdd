//! hort: a RAG engine for documents that must stay under control.
//!
//! The library is layered; each module imports only the ones below it
//! (checked by `tests/architecture.rs`, whose table is the authority, and
//! drawn in `docs/architecture.md`):
//!
//! - front ends: [`server`] (HTTP, the OpenAI-compatible endpoint, MCP over
//!   HTTP), [`mcp`] (the MCP protocol and its stdio transport), the `hort`
//!   binary (`src/bin/hort`), [`bench`];
//! - [`service`]: the use cases — search, ask, read a page, list, upload,
//!   delete, usage, approvals, the kill switch — with validation, limits,
//!   budgets, reranking and auditing done once for every front end;
//! - [`generate`] (providers, routing by sensitivity, output checks,
//!   citations), [`retrieve`] (hybrid search), [`ingest`] (walk, parse, chunk,
//!   embed, put), [`gateway`] (usage, rate limits, budgets, the audit chain
//!   behind the `Ledger` contract);
//! - [`store`]: the storage contract (`IndexRead`, `IndexWrite`, `Store`)
//!   with two backends, the embedded index and PostgreSQL + pgvector, opened
//!   by one factory ([`store::open`]); nothing above it names a backend;
//! - the ground floor: [`embed`], [`auth`], [`config`], [`sanitize`],
//!   [`acl`], [`text`].
//!
//! The access filter (teams and clearance) is applied inside the store's
//! searches, never after top-k, and checked a second time on every hit.

#![warn(missing_docs)]

pub mod acl;
pub mod auth;
pub mod bench;
pub mod config;
pub mod embed;
pub mod gateway;
pub mod generate;
pub mod ingest;
pub mod mcp;
pub mod retrieve;
pub mod sanitize;
pub mod server;
pub mod service;
pub mod store;
pub mod sync;
pub mod text;

pub use acl::{AccessRule, Classification, Principal};
pub use config::Config;
