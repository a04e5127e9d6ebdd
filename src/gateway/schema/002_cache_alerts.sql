-- The answer cache every node shares (see gateway/cache/mod.rs: the key is
-- the question over an exact context, so an entry is shared only by callers
-- who would send a provider the same context), and the budget alerts
-- already raised (one row per account, month and threshold: the row's
-- insertion is the claim that makes an alert fire once across all nodes).
CREATE TABLE IF NOT EXISTS answer_cache (
    key bytea PRIMARY KEY,
    context bytea NOT NULL,
    docs text[] NOT NULL,
    entry text NOT NULL,
    used bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS answer_cache_context ON answer_cache (context);
CREATE INDEX IF NOT EXISTS answer_cache_used ON answer_cache (used);
CREATE INDEX IF NOT EXISTS answer_cache_docs ON answer_cache USING gin (docs);
CREATE TABLE IF NOT EXISTS budget_alerts (
    kind text NOT NULL,
    name text NOT NULL,
    month text NOT NULL,
    permille int NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name, month, permille)
);
