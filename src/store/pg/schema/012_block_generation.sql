-- Each compaction (and each reset of the blocks) writes a new random
-- generation: nodes keep decoded blocks between searches and know from it,
-- read in the search's own snapshot, whether theirs are still the current
-- ones (src/store/pg/blocks.rs, BlockCache). Random rather than counted, so
-- that a database recreated under the same URL never repeats one.
ALTER TABLE term_block_state ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0;
UPDATE term_block_state SET generation = floor(random() * 9.2e18)::bigint;
