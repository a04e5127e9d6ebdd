-- The distribution column. Every table that grows with the corpus carries
-- its rows' access set (`access_sets.id`: a sorted team set and a
-- classification) as `acl`, as the postings already do. It is the key a
-- sharding layer spreads the corpus by (declarative partitioning, then
-- `postgres_fdw` foreign partitions or Citus distributed tables), and one
-- a search knows before it starts: a principal's teams and clearance name
-- the access sets it may read, so searches carry `acl = ANY(sets)` and a
-- partitioned table answers from the parts that hold them only.
-- docs/postgres.md ("Past one primary") has the plan.
INSERT INTO access_sets (teams, classification)
    SELECT DISTINCT ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(teams) t ORDER BY 1), classification
    FROM documents
    ON CONFLICT DO NOTHING;
ALTER TABLE documents ADD COLUMN acl int;
UPDATE documents d SET acl = s.id FROM access_sets s
    WHERE s.classification = d.classification
      AND s.teams = ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(d.teams) t ORDER BY 1);
ALTER TABLE documents ALTER COLUMN acl SET NOT NULL;
ALTER TABLE pages ADD COLUMN acl int;
UPDATE pages p SET acl = d.acl FROM documents d WHERE d.id = p.doc_id;
ALTER TABLE pages ALTER COLUMN acl SET NOT NULL;
-- Every chunk row is rewritten: the vector index is built again once
-- instead of taking each new row version one at a time (measured at 100,000
-- chunks: minutes of graph inserts against about a minute to build).
DROP INDEX IF EXISTS chunks_embedding;
ALTER TABLE chunks ADD COLUMN acl int;
UPDATE chunks k SET acl = d.acl FROM documents d WHERE d.id = k.doc_id;
ALTER TABLE chunks ALTER COLUMN acl SET NOT NULL;
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)
    WITH (m = {m}, ef_construction = {ef_construction});
-- Searches read the principal's access sets in the statement that opens
-- their transaction (already as hort_reader).
GRANT SELECT ON access_sets TO hort_reader;
