-- Shared workers (`orderflow serve` processes on one database), PostgreSQL flavour.
-- See the SQLite flavour for the meaning of the columns.

-- Which shop a run was for and which worker ran it; NULL for runs started by hand.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS shop TEXT NULL;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS worker TEXT NULL;

CREATE INDEX IF NOT EXISTS runs_flow_shop_started_at ON runs (flow, shop, started_at);

-- A (flow, shop) runs only in the worker holding its unexpired lease. `expires_at`
-- is milliseconds since 1970 by the database's clock, so the workers' own clocks
-- need not agree.
CREATE TABLE IF NOT EXISTS leases (
    flow       TEXT   NOT NULL,
    shop       TEXT   NOT NULL,
    holder     TEXT   NOT NULL,
    token      TEXT   NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (flow, shop)
);
