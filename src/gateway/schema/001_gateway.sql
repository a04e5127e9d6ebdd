-- The gateway's books, shared by every node on the database: spending per
-- account and month, per-minute request windows, and the audit chain with
-- its head (changed in the same transaction as the chain, so deleting the
-- newest rows leaves the head ahead of them). IF NOT EXISTS: databases made
-- before the gateway kept its own schema already have these tables.
CREATE TABLE IF NOT EXISTS usage (
    kind text NOT NULL,
    name text NOT NULL,
    month text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    prompt_tokens bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name, month)
);
CREATE TABLE IF NOT EXISTS rate_windows (
    account text NOT NULL,
    minute bigint NOT NULL,
    n int NOT NULL,
    PRIMARY KEY (account, minute)
);
CREATE TABLE IF NOT EXISTS audit (
    seq bigint PRIMARY KEY,
    line text NOT NULL,
    hash text NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
SELECT 1, coalesce(max(seq), 0),
       coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '{genesis}')
FROM audit
ON CONFLICT (id) DO NOTHING;
