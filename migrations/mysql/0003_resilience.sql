-- Resilience: rate-limit bans, shops that must authorise again, circuit breakers,
-- alerts, anomalous platform answers and reconciliations, MySQL / MariaDB flavour.
-- See docs/store.md.
--
-- Timestamps are VARCHAR(32) in the store's fixed UTC format
-- (`2024-05-01T08:00:00.000Z`), so text order is time order. Counts and ids are
-- BIGINT. Key and short columns are VARCHAR (TEXT cannot be part of a key): 64
-- characters for platform, app key, channel, kinds, methods and run ids, 191 for shop
-- names (191 utf8mb4 characters fit the oldest InnoDB index limit, 767 bytes), 32 for
-- breaker states. The store refuses longer values on every backend before writing,
-- so nothing is truncated. No secret (session key, app secret) ever goes into these
-- tables: an app key is a public identifier.

-- A rate-limit ban the platform put on an app key (TOP code 7). Every shop using the
-- key is banned with it, so the ban is kept per key, not per shop, and outlives the
-- run that hit it. An upsert keeps the later `banned_until` (`until` is reserved in
-- MySQL).
CREATE TABLE IF NOT EXISTS app_bans (
    platform     VARCHAR(64) NOT NULL,
    app_key      VARCHAR(64) NOT NULL,
    banned_until VARCHAR(32) NOT NULL,
    reason       LONGTEXT    NOT NULL,
    updated_at   VARCHAR(32) NOT NULL,
    PRIMARY KEY (platform, app_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Shops whose seller must authorise again (TOP code 26/27): syncing them is pointless
-- until an operator renews the session, which deletes the row. The first `since` and
-- reason are kept.
CREATE TABLE IF NOT EXISTS shop_reauth (
    platform VARCHAR(64)  NOT NULL,
    shop     VARCHAR(191) NOT NULL,
    since    VARCHAR(32)  NOT NULL,
    reason   LONGTEXT     NOT NULL,
    PRIMARY KEY (platform, shop)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The state of each circuit breaker (per shop and channel, e.g. `orders.increment`),
-- so that an open breaker stays open across runs and restarts. `state` and
-- `outcomes` (the sliding window, at most 1000 characters) belong to the engine; the
-- store does not interpret them.
CREATE TABLE IF NOT EXISTS breakers (
    platform         VARCHAR(64)   NOT NULL,
    shop             VARCHAR(191)  NOT NULL,
    channel          VARCHAR(64)   NOT NULL,
    state            VARCHAR(32)   NOT NULL,
    outcomes         VARCHAR(1000) NOT NULL,
    opened_at        VARCHAR(32)   NULL,
    last_degraded_at VARCHAR(32)   NULL,
    updated_at       VARCHAR(32)   NOT NULL,
    PRIMARY KEY (platform, shop, channel)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Alerts for people. At most one alert per (kind, platform, shop, tid) is open at a
-- time, and the database enforces it: `open_key` holds that tuple while the alert is
-- open and NULL once it is resolved, under a unique index (NULLs never collide), so
-- two processes raising the same alert at once store it once. The key is at most
-- 64 + 64 + 191 + 20 characters and three separators; 400 utf8mb4 characters (1600
-- bytes) need the 3072-byte index limit of the DYNAMIC row format, the default since
-- MySQL 5.7.9 and MariaDB 10.2.2.
CREATE TABLE IF NOT EXISTS alerts (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind        VARCHAR(64)  NOT NULL,
    platform    VARCHAR(64)  NOT NULL,
    shop        VARCHAR(191) NOT NULL,
    tid         BIGINT       NULL,
    detail      LONGTEXT     NOT NULL,
    created_at  VARCHAR(32)  NOT NULL,
    resolved_at VARCHAR(32)  NULL,
    open_key    VARCHAR(400) NULL,
    UNIQUE INDEX alerts_open_key (open_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Platform answers of no known shape (an HTML page, an empty body, truncated JSON, a
-- missing list, a field of the wrong type, a sudden drop), kept as evidence. The
-- excerpt is cut to 300 characters. No foreign key to runs: evidence outlives pruned
-- runs.
CREATE TABLE IF NOT EXISTS anomalies (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id     VARCHAR(64)  NULL,
    platform   VARCHAR(64)  NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    method     VARCHAR(64)  NOT NULL,
    kind       VARCHAR(64)  NOT NULL,
    excerpt    TEXT         NOT NULL,
    created_at VARCHAR(32)  NOT NULL,
    -- "How often does each shop get which anomaly" is the summary query.
    INDEX anomalies_platform_shop_kind (platform, shop, kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- What one reconciliation of one `created` window found (orders the platform counts
-- against orders stored) and did (orders fetched again, orders still missing).
CREATE TABLE IF NOT EXISTS reconciliations (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id         VARCHAR(64)  NOT NULL,
    platform       VARCHAR(64)  NOT NULL,
    shop           VARCHAR(191) NOT NULL,
    window_start   VARCHAR(32)  NOT NULL,
    window_end     VARCHAR(32)  NOT NULL,
    platform_count BIGINT       NOT NULL,
    stored_count   BIGINT       NOT NULL,
    refetched      BIGINT       NOT NULL,
    missing        BIGINT       NOT NULL,
    created_at     VARCHAR(32)  NOT NULL,
    -- "The latest windows of this shop".
    INDEX reconciliations_platform_shop_window_start (platform, shop, window_start)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Reconciliation counts a shop's orders by `created` window.
ALTER TABLE orders ADD INDEX orders_platform_shop_created (platform, shop, created);
