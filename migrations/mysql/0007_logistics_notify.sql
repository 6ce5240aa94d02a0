-- Logistics alerts and notifications, MySQL / MariaDB flavour. See docs/store.md.
--
-- Timestamps are VARCHAR(32) in the store's fixed UTC format
-- (`2024-05-01T08:00:00.000Z`), so text order is time order. Key columns are VARCHAR
-- (TEXT cannot be part of a key): 64 characters for platform and target, 191 for shop
-- names and delivery keys. The store refuses longer values on every backend before
-- writing, so nothing is truncated.

-- When `logistics_alert` last read each order's parcel trace, and the newest event it
-- saw then (NULL: no event yet). An order is read again only once its check is older
-- than the node's `recheck_after`, which keeps trace calls within the app key's quota.
CREATE TABLE IF NOT EXISTS parcel_checks (
    platform        VARCHAR(64)  NOT NULL,
    shop            VARCHAR(191) NOT NULL,
    tid             BIGINT       NOT NULL,
    checked_at      VARCHAR(32)  NOT NULL,
    newest_event_at VARCHAR(32)  NULL,
    PRIMARY KEY (platform, shop, tid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- What `notify` delivered: one row per (target, delivery key), written only after the
-- receiver answered 2xx, so each key is delivered to a target once. `target` names the
-- receiver without its URL (which may hold a token). 64 + 191 utf8mb4 characters fit
-- the 3072-byte index limit of the DYNAMIC row format.
CREATE TABLE IF NOT EXISTS deliveries (
    target       VARCHAR(64)  NOT NULL,
    delivery_key VARCHAR(191) NOT NULL,
    delivered_at VARCHAR(32)  NOT NULL,
    PRIMARY KEY (target, delivery_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
