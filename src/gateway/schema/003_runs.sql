-- Agent runs (service/runs.rs): the state of each run as JSON, written after
-- every step, so a run survives a restart and resumes after an approval on
-- any node.
CREATE TABLE IF NOT EXISTS agent_runs (
    id text PRIMARY KEY,
    state text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
