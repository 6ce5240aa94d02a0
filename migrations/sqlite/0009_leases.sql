-- Shared workers (`orderflow serve` on one database), SQLite flavour. A SQLite file
-- serves one process, so leases here only keep one code path for every backend.

-- Which shop a run was for and which `serve` process (worker id) ran it, so the
-- runs table shows that no (flow, shop) ran twice at once. NULL for runs started
-- by hand (`orderflow run`) and for runs recorded before this migration.
ALTER TABLE runs ADD COLUMN shop TEXT NULL;
ALTER TABLE runs ADD COLUMN worker TEXT NULL;

-- "The last run of this flow for this shop" is the scheduler's start-up query.
CREATE INDEX IF NOT EXISTS runs_flow_shop_started_at ON runs (flow, shop, started_at);

-- One row per (flow, shop) ever claimed. A worker runs a flow for a shop only while
-- it holds the row: `expires_at` (milliseconds since 1970, by the database's clock)
-- is in the future and `token` is the one its claim wrote. The row is taken over
-- once it expires; `epoch` counts the claims, a fencing number. `shop` is '' for a
-- flow without a shop.
CREATE TABLE IF NOT EXISTS leases (
    flow       TEXT    NOT NULL,
    shop       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    token      TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (flow, shop)
);
