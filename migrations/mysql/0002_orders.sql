-- Orders, their items and the sync cursors, MySQL / MariaDB flavour. See
-- docs/store.md for the contract other tools rely on.
--
-- Timestamps are VARCHAR(32) in the store's fixed UTC format
-- (`2024-05-01T08:00:00.000Z`), so text order is time order. Money is VARCHAR(32)
-- holding the decimal yuan string exactly as the platform writes it (`200.07`, always
-- two decimals): exact and the same on every backend. Sum it with
-- `SUM(CAST(payment AS DECIMAL(20, 2)))`. Identifiers are BIGINT: tids and oids
-- exceed 2^53.
--
-- Key and short columns are VARCHAR (TEXT cannot be part of a key): 64 characters for
-- platform, stream and the platform's status codes, 191 for shop names and SKU codes
-- (191 utf8mb4 characters fit the oldest InnoDB index limit, 767 bytes). The store
-- refuses longer values on every backend before writing, so nothing is truncated.

-- One row per platform order (a TOP trade). `modified` is the order's version: the
-- store never replaces a row with an older `modified` (see Store::save_orders).
CREATE TABLE IF NOT EXISTS orders (
    platform          VARCHAR(64)  NOT NULL,
    shop              VARCHAR(191) NOT NULL,
    tid               BIGINT       NOT NULL,
    status            VARCHAR(64)  NOT NULL,
    type              VARCHAR(64)  NOT NULL,
    created           VARCHAR(32)  NOT NULL,
    modified          VARCHAR(32)  NOT NULL,
    pay_time          VARCHAR(32)  NULL,
    payment           VARCHAR(32)  NOT NULL,
    buyer_nick        TEXT         NULL,
    step_trade_status VARCHAR(64)  NULL,
    -- The platform's JSON for the order, as received.
    raw               LONGTEXT     NOT NULL,
    -- When orderflow last wrote the row.
    synced_at         VARCHAR(32)  NOT NULL,
    PRIMARY KEY (platform, shop, tid),
    -- "What changed in this shop since …": incremental exports and reconciliation.
    INDEX orders_platform_shop_modified (platform, shop, modified)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The lines of an order. They are replaced together with their order, so they always
-- belong to the version in `orders`. No foreign key: the pair is written in one
-- transaction, and a key would only slow the bulk replace down.
CREATE TABLE IF NOT EXISTS order_items (
    platform      VARCHAR(64)  NOT NULL,
    shop          VARCHAR(191) NOT NULL,
    tid           BIGINT       NOT NULL,
    oid           BIGINT       NOT NULL,
    num_iid       BIGINT       NULL,
    sku_id        VARCHAR(191) NULL,
    outer_sku_id  VARCHAR(191) NULL,
    title         TEXT         NULL,
    num           BIGINT       NOT NULL,
    price         VARCHAR(32)  NOT NULL,
    payment       VARCHAR(32)  NOT NULL,
    refund_status VARCHAR(64)  NULL,
    refund_id     BIGINT       NULL,
    PRIMARY KEY (platform, shop, oid),
    INDEX order_items_platform_shop_tid (platform, shop, tid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Where each sync stream of a shop got to (`orders.increment`, `orders.full`, …). A
-- cursor is written in the same transaction as the orders it covers, so it never
-- claims more than the database holds.
CREATE TABLE IF NOT EXISTS sync_cursors (
    platform   VARCHAR(64)  NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    stream     VARCHAR(64)  NOT NULL,
    -- JSON, shaped by the stream that owns it.
    value      LONGTEXT     NOT NULL,
    updated_at VARCHAR(32)  NOT NULL,
    PRIMARY KEY (platform, shop, stream)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
