-- Documents, pages and chunks with their vectors and access rules, and the
-- row-level security policies every read runs under. {dim}, {m} and
-- {ef_construction} are filled in when the database is created.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE hort_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE documents (
    id bigserial PRIMARY KEY,
    root text NOT NULL,
    path text NOT NULL,
    kind text NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    sha256 text NOT NULL,
    -- No access rule: no teams, visible to nobody (fail closed).
    teams text[] NOT NULL,
    classification int NOT NULL,
    rule_source text,
    paged boolean NOT NULL,
    ingested_at bigint NOT NULL,
    hygiene_removed int NOT NULL DEFAULT 0,
    UNIQUE (root, path)
);
CREATE TABLE pages (
    doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord int NOT NULL,
    page_no int NOT NULL,
    text text NOT NULL,
    teams text[] NOT NULL,
    classification int NOT NULL,
    PRIMARY KEY (doc_id, ord)
);
CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord int NOT NULL,
    page_ord int NOT NULL,
    page_no int NOT NULL,
    byte_start int NOT NULL,
    byte_end int NOT NULL,
    char_start int NOT NULL,
    char_end int NOT NULL,
    text text NOT NULL,
    content_hash bytea NOT NULL,
    teams text[] NOT NULL,
    classification int NOT NULL,
    injection_score real,
    injection_reasons text[],
    embedding vector({dim}) NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX chunks_doc ON chunks (doc_id);
CREATE INDEX chunks_teams ON chunks USING gin (teams);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction});

-- Row-level security: the role reads run as sees only what the principal
-- set for the transaction may see. The table owner (the role hort connects
-- as) is exempt, for ingest and migration.
DO $$ BEGIN
    CREATE ROLE hort_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT hort_reader TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO hort_reader;
GRANT SELECT ON documents, pages, chunks TO hort_reader;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION hort_teams() RETURNS text[] LANGUAGE sql STABLE AS
    $f$ SELECT coalesce(nullif(current_setting('hort.teams', true), ''), '{}')::text[] $f$;
CREATE FUNCTION hort_clearance() RETURNS int LANGUAGE sql STABLE AS
    $f$ SELECT coalesce(nullif(current_setting('hort.clearance', true), ''), '-1')::int $f$;
CREATE POLICY hort_acl ON documents FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
CREATE POLICY hort_acl ON pages FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
CREATE POLICY hort_acl ON chunks FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
