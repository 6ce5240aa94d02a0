-- orderflow store, MySQL / MariaDB flavour.
--
-- Timestamps are VARCHAR(32) in one fixed UTC format (`2024-05-01T08:00:00.000Z`) on
-- every backend: the sqlx `Any` driver only carries basic types, and this format sorts
-- lexicographically in the same order as time, so `ORDER BY started_at` is correct.
--
-- Why the column types differ from the other backends:
-- * TEXT cannot be (part of) a primary key or a plain index, so ids are VARCHAR. 191
--   characters of utf8mb4 fit the oldest InnoDB index limit (767 bytes).
-- * utf8mb4_bin makes ids compare byte for byte, as on SQLite and PostgreSQL; the
--   default collation would treat `Ab` and `ab` as the same key.
-- * Counters are BIGINT: the `Any` driver does not support TINYINT at all.

-- One row per flow run. Written when the run starts (status `running`) and updated
-- once when it ends, so a crash leaves a visible `running` row behind.
CREATE TABLE IF NOT EXISTS runs (
    id           VARCHAR(64)  NOT NULL PRIMARY KEY,
    flow         VARCHAR(191) NOT NULL,
    -- `trigger` is a reserved word in SQL, hence the suffix.
    trigger_kind VARCHAR(191) NOT NULL,
    status       VARCHAR(32)  NOT NULL,
    started_at   VARCHAR(32)  NOT NULL,
    finished_at  VARCHAR(32)  NULL,
    error        LONGTEXT     NULL,
    -- "Recent runs of this flow" is the page and CLI query.
    INDEX runs_flow_started_at (flow, started_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Per-node counts of a finished run, written in the same transaction as the run's
-- final status.
CREATE TABLE IF NOT EXISTS run_nodes (
    run_id      VARCHAR(64)  NOT NULL,
    node_id     VARCHAR(191) NOT NULL,
    -- Position of the node in the run report, so nodes read back in the order they
    -- were written (NULL timestamps sort differently on each backend).
    seq         BIGINT       NOT NULL,
    node_type   VARCHAR(191) NOT NULL,
    status      VARCHAR(32)  NOT NULL,
    records_in  BIGINT       NOT NULL,
    records_out BIGINT       NOT NULL,
    errors      BIGINT       NOT NULL,
    started_at  VARCHAR(32)  NULL,
    finished_at VARCHAR(32)  NULL,
    error       LONGTEXT     NULL,
    PRIMARY KEY (run_id, node_id),
    CONSTRAINT run_nodes_run_id FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Records a node gave up on, kept whole (as JSON text) so they can be inspected and
-- replayed. No foreign key to runs: dead letters are evidence and outlive pruned runs.
CREATE TABLE IF NOT EXISTS dead_letters (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id     VARCHAR(64)  NOT NULL,
    flow       VARCHAR(191) NOT NULL,
    node_id    VARCHAR(191) NOT NULL,
    record     LONGTEXT     NOT NULL,
    reason     LONGTEXT     NOT NULL,
    created_at VARCHAR(32)  NOT NULL,
    INDEX dead_letters_run_id (run_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
