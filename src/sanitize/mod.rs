//! Defences on text that hort did not write. At ingest: [`hygiene`]
//! (normalisation, invisible characters). Injection detection, spotlighting
//! and personal-data masking join this module in the query path.

pub mod hygiene;
pub mod injection;
