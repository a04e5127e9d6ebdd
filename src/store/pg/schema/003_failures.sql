-- Files the latest ingest of each folder could not read: written in the
-- folder's sync transaction, read by operators (the owner role, not the
-- row-level-security reader: failed files have no rule to filter by).
CREATE TABLE IF NOT EXISTS ingest_failures (
    root text NOT NULL,
    path text NOT NULL,
    error text NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (root, path)
);
