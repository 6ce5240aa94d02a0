-- Resilience: rate-limit bans, shops that must authorise again, circuit breakers,
-- alerts, anomalous platform answers and reconciliations, PostgreSQL flavour. See
-- docs/store.md.
--
-- Timestamps are TEXT in the store's fixed UTC format (`2024-05-01T08:00:00.000Z`),
-- COLLATE "C" so that they compare and sort byte for byte whatever the locale; text
-- order is then time order. Counts and ids are BIGINT. No secret (session key, app
-- secret) ever goes into these tables: an app key is a public identifier.

-- A rate-limit ban the platform put on an app key (TOP code 7). Every shop using the
-- key is banned with it, so the ban is kept per key, not per shop, and outlives the
-- run that hit it. An upsert keeps the later `banned_until` (`until` is reserved in
-- MySQL).
CREATE TABLE IF NOT EXISTS app_bans (
    platform     TEXT NOT NULL,
    app_key      TEXT NOT NULL,
    banned_until TEXT COLLATE "C" NOT NULL,
    reason       TEXT NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, app_key)
);

-- Shops whose seller must authorise again (TOP code 26/27): syncing them is pointless
-- until an operator renews the session, which deletes the row. The first `since` and
-- reason are kept.
CREATE TABLE IF NOT EXISTS shop_reauth (
    platform TEXT NOT NULL,
    shop     TEXT NOT NULL,
    since    TEXT COLLATE "C" NOT NULL,
    reason   TEXT NOT NULL,
    PRIMARY KEY (platform, shop)
);

-- The state of each circuit breaker (per shop and channel, e.g. `orders.increment`),
-- so that an open breaker stays open across runs and restarts. `state` and
-- `outcomes` (the sliding window, at most 1000 characters) belong to the engine; the
-- store does not interpret them.
CREATE TABLE IF NOT EXISTS breakers (
    platform         TEXT NOT NULL,
    shop             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    state            TEXT NOT NULL,
    outcomes         TEXT NOT NULL,
    opened_at        TEXT COLLATE "C" NULL,
    last_degraded_at TEXT COLLATE "C" NULL,
    updated_at       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, shop, channel)
);

-- Alerts for people. At most one alert per (kind, platform, shop, tid) is open at a
-- time, and the database enforces it: `open_key` holds that tuple while the alert is
-- open and NULL once it is resolved, under a unique index (NULLs never collide), so
-- two processes raising the same alert at once store it once.
CREATE TABLE IF NOT EXISTS alerts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT   NOT NULL,
    platform    TEXT   NOT NULL,
    shop        TEXT   NOT NULL,
    tid         BIGINT NULL,
    detail      TEXT   NOT NULL,
    created_at  TEXT   COLLATE "C" NOT NULL,
    resolved_at TEXT   COLLATE "C" NULL,
    open_key    TEXT   NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_key ON alerts (open_key);

-- Platform answers of no known shape (an HTML page, an empty body, truncated JSON, a
-- missing list, a field of the wrong type, a sudden drop), kept as evidence. The
-- excerpt is cut to 300 characters. No foreign key to runs: evidence outlives pruned
-- runs.
CREATE TABLE IF NOT EXISTS anomalies (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     TEXT NULL,
    platform   TEXT NOT NULL,
    shop       TEXT NOT NULL,
    method     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    excerpt    TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

-- "How often does each shop get which anomaly" is the summary query.
CREATE INDEX IF NOT EXISTS anomalies_platform_shop_kind ON anomalies (platform, shop, kind);

-- What one reconciliation of one `created` window found (orders the platform counts
-- against orders stored) and did (orders fetched again, orders still missing).
CREATE TABLE IF NOT EXISTS reconciliations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         TEXT   NOT NULL,
    platform       TEXT   NOT NULL,
    shop           TEXT   NOT NULL,
    window_start   TEXT   COLLATE "C" NOT NULL,
    window_end     TEXT   COLLATE "C" NOT NULL,
    platform_count BIGINT NOT NULL,
    stored_count   BIGINT NOT NULL,
    refetched      BIGINT NOT NULL,
    missing        BIGINT NOT NULL,
    created_at     TEXT   COLLATE "C" NOT NULL
);

-- "The latest windows of this shop".
CREATE INDEX IF NOT EXISTS reconciliations_platform_shop_window_start
    ON reconciliations (platform, shop, window_start);

-- Reconciliation counts a shop's orders by `created` window.
CREATE INDEX IF NOT EXISTS orders_platform_shop_created ON orders (platform, shop, created);
