//! hort: a RAG engine for documents that must stay under control.
//!
//! Data flows one way (see `docs/architecture.md`):
//! `ingest` (loaders → chunker) → `embed` → `store` (one writer, atomic manifest)
//! and, on the query side, `acl::Filter` → `retrieve` (vector + keyword, fused).
//! No module reaches back up this chain; `main.rs` only parses arguments.

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
pub mod text;

pub use acl::{AccessRule, Classification, Principal};
pub use config::Config;
