-- Shared workers (`orderflow serve` processes on one database), MySQL / MariaDB
-- flavour. See the SQLite flavour for the meaning of the columns. Key columns are
-- VARCHAR(191) (TEXT cannot be part of a key).

-- Which shop a run was for and which worker ran it; NULL for runs started by hand.
ALTER TABLE runs ADD COLUMN shop VARCHAR(191) NULL, ADD COLUMN worker VARCHAR(191) NULL;

CREATE INDEX runs_flow_shop_started_at ON runs (flow, shop, started_at);

-- A (flow, shop) runs only in the worker holding its unexpired lease. `expires_at`
-- is milliseconds since 1970 by the database's clock, so the workers' own clocks
-- need not agree.
CREATE TABLE IF NOT EXISTS leases (
    flow       VARCHAR(191) NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    holder     VARCHAR(191) NOT NULL,
    token      VARCHAR(64)  NOT NULL,
    epoch      BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (flow, shop)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
