-- Inventory, PostgreSQL flavour. See docs/store.md and the SQLite flavour for the
-- meaning of the columns.
CREATE TABLE IF NOT EXISTS stock (
    sku        TEXT   NOT NULL PRIMARY KEY,
    on_hand    BIGINT NOT NULL,
    frozen     BIGINT NOT NULL DEFAULT 0,
    on_order   BIGINT NOT NULL DEFAULT 0,
    updated_at TEXT   NOT NULL
);
