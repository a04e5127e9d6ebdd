-- Keyword postings as blocks (see src/store/pg/blocks.rs): one row per
-- (field, term) with all of the term's postings, built by compaction, read
-- in a few rows and scored by hort. `chunk_terms` stays the source of truth;
-- what changed since the blocks were built (chunks above `upto`, and
-- postings `moved` to another access set) is read from it through two
-- (field, term, chunk_id) indexes, which replace the walk and access
-- indexes of the row-per-posting search.
CREATE TABLE term_blocks (
    field smallint NOT NULL,
    term text NOT NULL,
    -- Postings in chunk order, varint-coded (format byte first); stored
    -- out of line uncompressed: they do not compress, and are read whole.
    postings bytea NOT NULL,
    PRIMARY KEY (field, term)
);
ALTER TABLE term_blocks ALTER COLUMN postings SET STORAGE EXTERNAL;
-- Chunks whose postings in a block no longer hold (deleted, or moved to
-- another access set), until the next compaction.
CREATE TABLE term_block_dead (chunk_id bigint PRIMARY KEY);
CREATE TABLE term_block_state (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto bigint NOT NULL,
    built_at timestamptz
);
INSERT INTO term_block_state (upto) VALUES (0);
DROP INDEX IF EXISTS chunk_terms_walk;
DROP INDEX IF EXISTS chunk_terms_access;
ALTER TABLE chunk_terms DROP COLUMN IF EXISTS impact;
ALTER TABLE chunk_terms ADD COLUMN moved boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS chunk_terms_recent ON chunk_terms (field, term, chunk_id) INCLUDE (tf, len, acl);
CREATE INDEX IF NOT EXISTS chunk_terms_moved ON chunk_terms (field, term, chunk_id) INCLUDE (tf, len, acl) WHERE moved;
