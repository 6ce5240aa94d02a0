-- Restock suggestions, SQLite flavour. See docs/store.md and docs/restock.md.
--
-- One row per SKU per `restock_suggest` run: the forecasting model chosen, its
-- back-test MAPE and the naive baseline's (percent; NULL when the history was too
-- short to back-test or nothing sold on the tested days), the 7-day forecast as a JSON
-- array of daily units, and the figures the suggestion was computed from:
-- suggested = max(0, ceil(demand_over_lead + safety_stock - available - on_order)).
-- Timestamps are TEXT in the store's fixed UTC format, so text order is time order.
CREATE TABLE IF NOT EXISTS restock_suggestions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT    NOT NULL,
    platform         TEXT    NOT NULL,
    shop             TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    mape_model       REAL    NULL,
    mape_naive       REAL    NULL,
    forecast_7d      TEXT    NOT NULL,
    lead_time_days   INTEGER NOT NULL,
    demand_over_lead REAL    NOT NULL,
    safety_stock     INTEGER NOT NULL,
    available        INTEGER NOT NULL,
    on_order         INTEGER NOT NULL,
    suggested        INTEGER NOT NULL,
    created_at       TEXT    NOT NULL
);

-- "The latest suggestions for this SKU".
CREATE INDEX IF NOT EXISTS restock_suggestions_sku_created_at ON restock_suggestions (sku, created_at);
