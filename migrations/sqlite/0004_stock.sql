-- Inventory, SQLite flavour. See docs/store.md.
--
-- One row per SKU (the merchant's `outer_sku_id`, or the platform's `sku_id` when the
-- merchant has none). available = on_hand - frozen: `frozen` is what presale orders
-- have reserved and not yet shipped; `on_order` is what suppliers are bringing.
-- Quantities are whole units. `orderflow stock import` sets on_hand and on_order; the
-- stock nodes move frozen and on_hand, each change recorded in stock_movements.
CREATE TABLE IF NOT EXISTS stock (
    sku        TEXT    NOT NULL PRIMARY KEY,
    on_hand    INTEGER NOT NULL,
    frozen     INTEGER NOT NULL DEFAULT 0,
    on_order   INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL
);
