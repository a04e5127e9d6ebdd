-- Direct ingest into the database (no staging index): when each file's
-- content was last compared, for the "racy clean" rule of incremental sync.
ALTER TABLE documents ADD COLUMN IF NOT EXISTS checked_at_ns bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS documents_path ON documents (path);
