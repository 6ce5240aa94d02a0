-- Presale stock freezes and the movements they make, MySQL / MariaDB flavour. See
-- docs/store.md and the SQLite flavour for the meaning of the columns.
CREATE TABLE IF NOT EXISTS stock_freezes (
    platform   VARCHAR(64)  NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    tid        BIGINT       NOT NULL,
    oid        BIGINT       NOT NULL,
    sku        VARCHAR(191) NOT NULL,
    quantity   BIGINT       NOT NULL,
    state      VARCHAR(16)  NOT NULL,
    created_at VARCHAR(32)  NOT NULL,
    updated_at VARCHAR(32)  NOT NULL,
    PRIMARY KEY (platform, shop, oid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS stock_movements (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    platform   VARCHAR(64)  NOT NULL,
    shop       VARCHAR(191) NOT NULL,
    tid        BIGINT       NOT NULL,
    oid        BIGINT       NOT NULL,
    sku        VARCHAR(191) NOT NULL,
    kind       VARCHAR(16)  NOT NULL,
    quantity   BIGINT       NOT NULL,
    created_at VARCHAR(32)  NOT NULL,
    run_id     VARCHAR(64)  NULL,
    -- "What happened to this order's stock" is the question.
    INDEX stock_movements_order (platform, shop, tid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
