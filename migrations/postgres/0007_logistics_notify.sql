-- Logistics alerts and notifications, PostgreSQL flavour. See docs/store.md.
--
-- Timestamps are TEXT in the store's fixed UTC format (`2024-05-01T08:00:00.000Z`),
-- COLLATE "C" so that they compare and sort byte for byte whatever the locale; text
-- order is then time order.

-- When `logistics_alert` last read each order's parcel trace, and the newest event it
-- saw then (NULL: no event yet). An order is read again only once its check is older
-- than the node's `recheck_after`, which keeps trace calls within the app key's quota.
CREATE TABLE IF NOT EXISTS parcel_checks (
    platform        TEXT   NOT NULL,
    shop            TEXT   NOT NULL,
    tid             BIGINT NOT NULL,
    checked_at      TEXT   COLLATE "C" NOT NULL,
    newest_event_at TEXT   COLLATE "C" NULL,
    PRIMARY KEY (platform, shop, tid)
);

-- What `notify` delivered: one row per (target, delivery key), written only after the
-- receiver answered 2xx, so each key is delivered to a target once. `target` names the
-- receiver without its URL (which may hold a token).
CREATE TABLE IF NOT EXISTS deliveries (
    target       TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    delivered_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (target, delivery_key)
);
