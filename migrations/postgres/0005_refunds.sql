-- Refunds, PostgreSQL flavour. See docs/store.md for the contract other tools rely
-- on.
--
-- Timestamps are TEXT in the store's fixed UTC format (`2024-05-01T08:00:00.000Z`), so
-- text order is time order. `refund_fee` is TEXT holding the decimal yuan string
-- exactly as the platform writes it (`200.07`), like `orders.payment`. Sum it with
-- `SUM(CAST(refund_fee AS NUMERIC(20, 2)))`. JSON is TEXT because the `Any` driver
-- cannot bind JSONB; cast it (`raw::jsonb`) to query into it. Identifiers are 64-bit:
-- refund ids, tids and oids exceed 2^53. Timestamp columns use COLLATE "C" so that
-- they compare and sort byte for byte whatever the database's locale.

-- One row per refund request. `modified` is the refund's version: the store never
-- replaces a row with an older `modified` (see Store::save_refunds). A refund belongs
-- to one order line: `oid` joins `order_items` of the same platform and shop. No
-- foreign key: refunds and orders are synced by separate flows, in either order.
CREATE TABLE IF NOT EXISTS refunds (
    platform   TEXT   NOT NULL,
    shop       TEXT   NOT NULL,
    refund_id  BIGINT NOT NULL,
    tid        BIGINT NOT NULL,
    oid        BIGINT NOT NULL,
    -- The platform's refund status (`WAIT_SELLER_AGREE`, `SUCCESS`, `CLOSED`, …).
    status     TEXT   NOT NULL,
    refund_fee TEXT   NOT NULL,
    created    TEXT   COLLATE "C" NOT NULL,
    modified   TEXT   COLLATE "C" NOT NULL,
    -- The platform's JSON for the refund, as received.
    raw        TEXT   NOT NULL,
    -- When orderflow last wrote the row.
    synced_at  TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, shop, refund_id)
);

-- "The refunds of this order line": the link to order_items.
CREATE INDEX IF NOT EXISTS refunds_platform_shop_oid ON refunds (platform, shop, oid);

-- "What changed in this shop since …": incremental exports.
CREATE INDEX IF NOT EXISTS refunds_platform_shop_modified ON refunds (platform, shop, modified);
