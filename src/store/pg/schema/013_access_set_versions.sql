-- A version per access set: every write transaction that inserts, deletes
-- or moves a set's chunks gives the set a new random version before it
-- commits (src/store/pg/write.rs), so a node that keeps a set's vectors
-- (src/store/pg/vectors.rs) knows from the version, read in a search's own
-- snapshot, whether they are still the set's chunks. Random rather than
-- counted, so that a database recreated under the same URL never repeats
-- one; the default gives new sets one too.
ALTER TABLE access_sets ADD COLUMN IF NOT EXISTS version bigint NOT NULL
    DEFAULT floor(random() * 9.2e18)::bigint;
