-- Restock suggestions, MySQL / MariaDB flavour. See docs/store.md and the SQLite
-- flavour for the meaning of the columns. Key and short columns are VARCHAR (TEXT
-- cannot be part of a key): 64 characters for platform, run id and model, 191 for
-- shop and SKU (the oldest InnoDB index limit); timestamps are VARCHAR(32) in the
-- store's fixed UTC format. The store refuses longer values before writing.
CREATE TABLE IF NOT EXISTS restock_suggestions (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id           VARCHAR(64)  NOT NULL,
    platform         VARCHAR(64)  NOT NULL,
    shop             VARCHAR(191) NOT NULL,
    sku              VARCHAR(191) NOT NULL,
    model            VARCHAR(64)  NOT NULL,
    mape_model       DOUBLE       NULL,
    mape_naive       DOUBLE       NULL,
    forecast_7d      LONGTEXT     NOT NULL,
    lead_time_days   BIGINT       NOT NULL,
    demand_over_lead DOUBLE       NOT NULL,
    safety_stock     BIGINT       NOT NULL,
    available        BIGINT       NOT NULL,
    on_order         BIGINT       NOT NULL,
    suggested        BIGINT       NOT NULL,
    created_at       VARCHAR(32)  NOT NULL,
    -- "The latest suggestions for this SKU".
    INDEX restock_suggestions_sku_created_at (sku, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
