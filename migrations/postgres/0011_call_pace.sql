-- The pace of each app key's calls, shared by every process on the database
-- (without Redis). See the SQLite flavour for the meaning of the columns.
CREATE TABLE IF NOT EXISTS app_call_pace (
    platform     TEXT   NOT NULL,
    app_key      TEXT   NOT NULL,
    next_call_ms BIGINT NOT NULL,
    PRIMARY KEY (platform, app_key)
);
