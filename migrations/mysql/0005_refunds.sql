-- Refunds, MySQL / MariaDB flavour. See docs/store.md for the contract other tools
-- rely on.
--
-- Timestamps are VARCHAR(32) in the store's fixed UTC format
-- (`2024-05-01T08:00:00.000Z`), so text order is time order. `refund_fee` is
-- VARCHAR(32) holding the decimal yuan string exactly as the platform writes it
-- (`200.07`), like `orders.payment`. Sum it with `SUM(CAST(refund_fee AS DECIMAL(20,
-- 2)))`. Identifiers are BIGINT: refund ids, tids and oids exceed 2^53.
--
-- Key and short columns are VARCHAR (TEXT cannot be part of a key): 64 characters for
-- platform and the refund status, 191 for shop names (191 utf8mb4 characters fit the
-- oldest InnoDB index limit, 767 bytes). The store refuses longer values on every
-- backend before writing, so nothing is truncated.

-- One row per refund request. `modified` is the refund's version: the store never
-- replaces a row with an older `modified` (see Store::save_refunds). A refund belongs
-- to one order line: `oid` joins `order_items` of the same platform and shop. No
-- foreign key: refunds and orders are synced by separate flows, in either order.
CREATE TABLE IF NOT EXISTS refunds (
    platform   VARCHAR(64)  NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    refund_id  BIGINT       NOT NULL,
    tid        BIGINT       NOT NULL,
    oid        BIGINT       NOT NULL,
    -- The platform's refund status (`WAIT_SELLER_AGREE`, `SUCCESS`, `CLOSED`, …).
    status     VARCHAR(64)  NOT NULL,
    refund_fee VARCHAR(32)  NOT NULL,
    created    VARCHAR(32)  NOT NULL,
    modified   VARCHAR(32)  NOT NULL,
    -- The platform's JSON for the refund, as received.
    raw        LONGTEXT     NOT NULL,
    -- When orderflow last wrote the row.
    synced_at  VARCHAR(32)  NOT NULL,
    PRIMARY KEY (platform, shop, refund_id),
    -- "The refunds of this order line": the link to order_items.
    INDEX refunds_platform_shop_oid (platform, shop, oid),
    -- "What changed in this shop since …": incremental exports.
    INDEX refunds_platform_shop_modified (platform, shop, modified)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
