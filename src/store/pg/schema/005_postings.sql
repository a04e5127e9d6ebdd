-- BM25 inside the database: the keyword side ranked as the embedded index
-- ranks (same analysers, same fields, same formula), from postings the
-- write path fills with the terms hort's own analysers produce.
--
-- A posting carries what ranking needs (term frequency, the chunk's length
-- in the field) and the chunk's access set, so that the walk over a term's
-- postings, best first, filters by access inside the index (an index-only
-- scan) instead of visiting every chunk row. Access sets are the distinct
-- (teams, classification) pairs of the documents; a query admits the sets
-- its principal may see. Chunks stay the source of truth for the rule:
-- texts are read under row-level security.
CREATE TABLE access_sets (
    id serial PRIMARY KEY,
    teams text[] NOT NULL,
    classification int NOT NULL,
    UNIQUE (teams, classification)
);
CREATE TABLE chunk_terms (
    chunk_id bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    -- 0 English, 1 German, 2 German compound parts, 3 other languages.
    field smallint NOT NULL,
    term text NOT NULL,
    tf int NOT NULL,
    len int NOT NULL,
    acl int NOT NULL,
    -- The order postings are walked in: BM25's term-frequency factor at a
    -- reference length, highest first.
    impact real NOT NULL,
    PRIMARY KEY (chunk_id, field, term)
);
CREATE INDEX chunk_terms_walk ON chunk_terms (field, term, impact DESC) INCLUDE (chunk_id, tf, len, acl);
-- Document frequencies and field lengths, maintained by each write
-- transaction as it commits.
CREATE TABLE term_df (
    field smallint NOT NULL,
    term text NOT NULL,
    df bigint NOT NULL,
    PRIMARY KEY (field, term)
);
CREATE TABLE field_lengths (
    field smallint PRIMARY KEY,
    chunks bigint NOT NULL,
    tokens bigint NOT NULL
);
INSERT INTO field_lengths VALUES (0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0);
-- Full-text search is replaced by the postings.
ALTER TABLE chunks DROP COLUMN IF EXISTS tsv;
