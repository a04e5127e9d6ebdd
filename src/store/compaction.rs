//! Compaction: rewrites segments that are mostly dead and merges small ones
//! when there are too many. Vectors are copied, never re-embedded; chunk ids
//! stay the same, so the keyword index is untouched.

use std::collections::{BTreeSet, HashMap};

use super::contract::CompactStats;
use super::docs::DocRecord;
use super::segment::SegmentBuilder;
use super::{IndexWriter, StoreError};

/// Segments beyond this count are merged by [`IndexWriter::compact`].
const MAX_SEGMENTS: usize = 8;
/// A segment whose live share falls below this is rewritten by compaction.
const MIN_LIVE_RATIO: f64 = 0.5;

impl IndexWriter {
    /// Live chunk count per segment name.
    fn live_per_segment(&self) -> HashMap<&str, usize> {
        let mut live: HashMap<&str, usize> = HashMap::new();
        for d in self.docs.iter() {
            *live.entry(d.segment.as_str()).or_default() += d.n_chunks as usize;
        }
        live
    }

    /// Rewrites segments that are mostly dead, and merges small ones when
    /// there are too many. Vectors are copied, never re-embedded; chunk ids
    /// stay the same, so the keyword index is untouched.
    pub fn compact(&mut self, force: bool) -> Result<CompactStats, StoreError> {
        let live = self.live_per_segment();
        let mut all: Vec<(String, usize, usize)> = self
            .manifest
            .segments
            .iter()
            .chain(self.new_segments.iter())
            .filter_map(|m| {
                let l = live.get(m.name.as_str()).copied().unwrap_or(0);
                (l > 0).then(|| (m.name.clone(), l, m.chunks as usize))
            })
            .collect();
        let mut pick: BTreeSet<String> = BTreeSet::new();
        if force {
            pick.extend(all.iter().map(|s| s.0.clone()));
        } else {
            for (name, l, total) in &all {
                if (*l as f64) < MIN_LIVE_RATIO * *total as f64 {
                    pick.insert(name.clone());
                }
            }
            if all.len() > MAX_SEGMENTS {
                all.sort_by_key(|s| s.1);
                let excess = all.len() - MAX_SEGMENTS + 1;
                pick.extend(all.iter().take(excess.max(2)).map(|s| s.0.clone()));
            }
        }
        let dead: usize = all
            .iter()
            .filter(|s| pick.contains(&s.0))
            .map(|s| s.2 - s.1)
            .sum();
        if pick.is_empty() || (pick.len() == 1 && dead == 0) {
            return Ok(CompactStats::default());
        }
        let mut docs: Vec<DocRecord> = self
            .docs
            .iter()
            .filter(|d| d.n_chunks > 0 && pick.contains(&d.segment))
            .cloned()
            .collect();
        docs.sort_by_key(|d| d.first_chunk);
        let dim = self.manifest.dim as usize;
        let mut b = SegmentBuilder::new(dim);
        let mut moved = Vec::with_capacity(docs.len());
        for d in &docs {
            let seg = self
                .segments
                .get(&d.segment)
                .ok_or_else(|| StoreError::Corrupt(format!("missing segment {}", d.segment)))?
                .clone();
            let first_page = b.page_count() as u32;
            for p in d.first_page..d.first_page + d.n_pages {
                b.add_page_ocr(seg.page_no(p), seg.page_text(p)?, seg.page_ocr(p));
            }
            let vecs = seg.vectors();
            for id in d.chunk_ids() {
                let row = seg
                    .local(id)
                    .ok_or_else(|| StoreError::Corrupt(format!("chunk {id} missing")))?;
                let mut rec = seg.chunk(row);
                if rec.page_idx < d.first_page || rec.page_idx >= d.first_page + d.n_pages {
                    return Err(StoreError::Corrupt(format!("chunk {id} outside its pages")));
                }
                rec.page_idx = rec.page_idx - d.first_page + first_page;
                b.add_chunk(id, rec, vecs.get(row))?;
            }
            moved.push((d.id, first_page));
        }
        let name = self.write_segment(b)?;
        for (id, first_page) in moved {
            if let Some(d) = self.docs.get_mut(id) {
                d.segment = name.clone();
                d.first_page = first_page;
            }
        }
        self.dirty = true;
        Ok(CompactStats {
            merged_segments: pick.len(),
            dropped_chunks: dead,
        })
    }
}
