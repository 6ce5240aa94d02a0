-- Presale stock freezes and the movements they make, PostgreSQL flavour. See
-- docs/store.md and the SQLite flavour for the meaning of the columns.
CREATE TABLE IF NOT EXISTS stock_freezes (
    platform   TEXT   NOT NULL,
    shop       TEXT   NOT NULL,
    tid        BIGINT NOT NULL,
    oid        BIGINT NOT NULL,
    sku        TEXT   NOT NULL,
    quantity   BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL,
    PRIMARY KEY (platform, shop, oid)
);

CREATE TABLE IF NOT EXISTS stock_movements (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform   TEXT   NOT NULL,
    shop       TEXT   NOT NULL,
    tid        BIGINT NOT NULL,
    oid        BIGINT NOT NULL,
    sku        TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    quantity   BIGINT NOT NULL,
    created_at TEXT   NOT NULL,
    run_id     TEXT   NULL
);

CREATE INDEX IF NOT EXISTS stock_movements_order ON stock_movements (platform, shop, tid);
