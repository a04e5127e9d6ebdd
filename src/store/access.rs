//! The access arrays of a snapshot: per segment and chunk, the document's
//! teams as a bitset over the snapshot's team table and its classification
//! level (the filter checks these inside both searches), plus per team and
//! level chunk counts (the planner's estimate of how much a principal sees).
//! All derived from the document table, the one source of truth for access.

use std::collections::HashMap;
use std::sync::Arc;

use super::docs::DocTable;
use super::segment::Segment;
use super::StoreError;
use crate::acl::{AclTable, TeamTable};

/// Access arrays and planner statistics of one snapshot.
pub(super) struct AccessData {
    pub teams: TeamTable,
    pub acl: Vec<AclTable>,
    pub counts: Vec<Vec<[u32; 4]>>,
    pub live: usize,
}

/// Builds per-segment access arrays and counts from the document table.
pub(super) fn build_acl(
    segments: &[Arc<Segment>],
    docs: &DocTable,
) -> Result<AccessData, StoreError> {
    let mut teams = TeamTable::new();
    for d in docs.iter() {
        if let Some(a) = &d.access {
            for t in &a.teams {
                teams.intern(t);
            }
        }
    }
    let pos: HashMap<&str, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name(), i))
        .collect();
    let mut acl: Vec<AclTable> = segments
        .iter()
        .map(|s| AclTable::new(s.len(), teams.words()))
        .collect();
    let mut counts: Vec<Vec<[u32; 4]>> = segments
        .iter()
        .map(|_| vec![[0u32; 4]; teams.len()])
        .collect();
    let mut live = 0usize;
    for d in docs.iter() {
        if d.n_chunks == 0 {
            continue;
        }
        let s = *pos.get(d.segment.as_str()).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "document {} refers to missing segment {}",
                d.path, d.segment
            ))
        })?;
        let seg = &segments[s];
        let start = seg.local(d.first_chunk);
        let last = seg.local(d.first_chunk + d.n_chunks as u64 - 1);
        let (Some(start), Some(last)) = (start, last) else {
            return Err(StoreError::Corrupt(format!(
                "chunks of {} are not in segment {}",
                d.path, d.segment
            )));
        };
        if last + 1 - start != d.n_chunks as usize {
            return Err(StoreError::Corrupt(format!(
                "chunks of {} are not contiguous in segment {}",
                d.path, d.segment
            )));
        }
        acl[s].set(start, &teams, d.access.as_ref());
        for row in start + 1..=last {
            acl[s].copy_entry(start, row);
        }
        if let Some(a) = &d.access {
            for t in &a.teams {
                if let Some(bit) = teams.get(t) {
                    counts[s][bit as usize][a.classification.level() as usize] += d.n_chunks;
                }
            }
        }
        live += d.n_chunks as usize;
    }
    Ok(AccessData {
        teams,
        acl,
        counts,
        live,
    })
}
