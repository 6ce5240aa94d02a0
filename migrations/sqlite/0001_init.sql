-- orderflow store, SQLite flavour.
--
-- Timestamps are TEXT in one fixed UTC format (`2024-05-01T08:00:00.000Z`) on every
-- backend: the sqlx `Any` driver only carries basic types, and this format sorts
-- lexicographically in the same order as time, so `ORDER BY started_at` is correct.

-- One row per flow run. Written when the run starts (status `running`) and updated
-- once when it ends, so a crash leaves a visible `running` row behind.
CREATE TABLE IF NOT EXISTS runs (
    id           TEXT NOT NULL PRIMARY KEY,
    flow         TEXT NOT NULL,
    -- `trigger` is a reserved word in SQL, hence the suffix.
    trigger_kind TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NULL,
    error        TEXT NULL
);

-- "Recent runs of this flow" is the page and CLI query.
CREATE INDEX IF NOT EXISTS runs_flow_started_at ON runs (flow, started_at);

-- Per-node counts of a finished run, written in the same transaction as the run's
-- final status.
CREATE TABLE IF NOT EXISTS run_nodes (
    run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id     TEXT    NOT NULL,
    -- Position of the node in the run report, so nodes read back in the order they
    -- were written (NULL timestamps sort differently on each backend).
    seq         INTEGER NOT NULL,
    node_type   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    records_in  INTEGER NOT NULL,
    records_out INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    started_at  TEXT    NULL,
    finished_at TEXT    NULL,
    error       TEXT    NULL,
    PRIMARY KEY (run_id, node_id)
);

-- Records a node gave up on, kept whole (as JSON) so they can be inspected and replayed.
-- No foreign key to runs: dead letters are evidence and outlive pruned runs.
CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    flow       TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    record     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS dead_letters_run_id ON dead_letters (run_id);
