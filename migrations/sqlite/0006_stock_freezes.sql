-- Presale stock freezes and the movements they make, SQLite flavour. See docs/store.md.
--
-- One row per order line that froze stock. Its key (platform, shop, oid) is what makes
-- freezing idempotent: a line is frozen once however often its order is processed, and
-- it moves on only from `frozen` (to `released` when refunded or closed, to `deducted`
-- when shipped). `sku` and `quantity` are those the line froze, so a release or
-- deduction gives back exactly what was taken.
CREATE TABLE IF NOT EXISTS stock_freezes (
    platform   TEXT    NOT NULL,
    shop       TEXT    NOT NULL,
    tid        INTEGER NOT NULL,
    oid        INTEGER NOT NULL,
    sku        TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (platform, shop, oid)
);

-- Every change the freezes made to `stock`, oldest first: kind freeze, release or
-- deduct, with the run that made it. Written in the same transaction as the change.
CREATE TABLE IF NOT EXISTS stock_movements (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    platform   TEXT    NOT NULL,
    shop       TEXT    NOT NULL,
    tid        INTEGER NOT NULL,
    oid        INTEGER NOT NULL,
    sku        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    created_at TEXT    NOT NULL,
    run_id     TEXT    NULL
);

-- "What happened to this order's stock" is the question.
CREATE INDEX IF NOT EXISTS stock_movements_order ON stock_movements (platform, shop, tid);
