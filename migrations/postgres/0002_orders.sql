-- Orders, their items and the sync cursors, PostgreSQL flavour. See docs/store.md for
-- the contract other tools rely on.
--
-- Timestamps are TEXT in the store's fixed UTC format (`2024-05-01T08:00:00.000Z`), so
-- text order is time order. Money is TEXT holding the decimal yuan string exactly as
-- the platform writes it (`200.07`, always two decimals): exact and the same on every
-- backend. Sum it with `SUM(CAST(payment AS NUMERIC(20, 2)))`. JSON is TEXT because
-- the `Any` driver cannot bind JSONB; cast it (`raw::jsonb`) to query into it.
-- Identifiers are 64-bit: tids and oids exceed 2^53. Timestamp columns use COLLATE "C"
-- so that they compare and sort byte for byte whatever the database's locale.

-- One row per platform order (a TOP trade). `modified` is the order's version: the
-- store never replaces a row with an older `modified` (see Store::save_orders).
CREATE TABLE IF NOT EXISTS orders (
    platform          TEXT   NOT NULL,
    shop              TEXT   NOT NULL,
    tid               BIGINT NOT NULL,
    status            TEXT   NOT NULL,
    type              TEXT   NOT NULL,
    created           TEXT   COLLATE "C" NOT NULL,
    modified          TEXT   COLLATE "C" NOT NULL,
    pay_time          TEXT   COLLATE "C" NULL,
    payment           TEXT   NOT NULL,
    buyer_nick        TEXT   NULL,
    step_trade_status TEXT   NULL,
    -- The platform's JSON for the order, as received.
    raw               TEXT   NOT NULL,
    -- When orderflow last wrote the row.
    synced_at         TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, shop, tid)
);

-- "What changed in this shop since …": incremental exports and reconciliation.
CREATE INDEX IF NOT EXISTS orders_platform_shop_modified ON orders (platform, shop, modified);

-- The lines of an order. They are replaced together with their order, so they always
-- belong to the version in `orders`. No foreign key: the pair is written in one
-- transaction, and a key would only slow the bulk replace down.
CREATE TABLE IF NOT EXISTS order_items (
    platform      TEXT   NOT NULL,
    shop          TEXT   NOT NULL,
    tid           BIGINT NOT NULL,
    oid           BIGINT NOT NULL,
    num_iid       BIGINT NULL,
    sku_id        TEXT   NULL,
    outer_sku_id  TEXT   NULL,
    title         TEXT   NULL,
    num           BIGINT NOT NULL,
    price         TEXT   NOT NULL,
    payment       TEXT   NOT NULL,
    refund_status TEXT   NULL,
    refund_id     BIGINT NULL,
    PRIMARY KEY (platform, shop, oid)
);

CREATE INDEX IF NOT EXISTS order_items_platform_shop_tid ON order_items (platform, shop, tid);

-- Where each sync stream of a shop got to (`orders.increment`, `orders.full`, …). A
-- cursor is written in the same transaction as the orders it covers, so it never
-- claims more than the database holds.
CREATE TABLE IF NOT EXISTS sync_cursors (
    platform   TEXT NOT NULL,
    shop       TEXT NOT NULL,
    stream     TEXT NOT NULL,
    -- JSON, shaped by the stream that owns it.
    value      TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, shop, stream)
);
