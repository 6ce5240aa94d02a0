-- Restock suggestions, PostgreSQL flavour. See docs/store.md and the SQLite flavour
-- for the meaning of the columns. Timestamps are TEXT COLLATE "C" in the store's
-- fixed UTC format, so text order is time order.
CREATE TABLE IF NOT EXISTS restock_suggestions (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           TEXT             NOT NULL,
    platform         TEXT             NOT NULL,
    shop             TEXT             NOT NULL,
    sku              TEXT             NOT NULL,
    model            TEXT             NOT NULL,
    mape_model       DOUBLE PRECISION NULL,
    mape_naive       DOUBLE PRECISION NULL,
    forecast_7d      TEXT             NOT NULL,
    lead_time_days   BIGINT           NOT NULL,
    demand_over_lead DOUBLE PRECISION NOT NULL,
    safety_stock     BIGINT           NOT NULL,
    available        BIGINT           NOT NULL,
    on_order         BIGINT           NOT NULL,
    suggested        BIGINT           NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL
);

-- "The latest suggestions for this SKU".
CREATE INDEX IF NOT EXISTS restock_suggestions_sku_created_at ON restock_suggestions (sku, created_at);
