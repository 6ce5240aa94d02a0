-- Inventory, MySQL / MariaDB flavour. See docs/store.md and the SQLite flavour for
-- the meaning of the columns. SKUs are at most 191 characters (an index key).
CREATE TABLE IF NOT EXISTS stock (
    sku        VARCHAR(191) NOT NULL PRIMARY KEY,
    on_hand    BIGINT       NOT NULL,
    frozen     BIGINT       NOT NULL DEFAULT 0,
    on_order   BIGINT       NOT NULL DEFAULT 0,
    updated_at VARCHAR(32)  NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
