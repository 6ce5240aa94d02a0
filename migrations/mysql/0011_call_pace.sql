-- The pace of each app key's calls, shared by every process on the database
-- (without Redis), MySQL / MariaDB flavour. See the SQLite flavour for the meaning
-- of the columns. Key columns are VARCHAR(64), as in `app_bans`.
CREATE TABLE IF NOT EXISTS app_call_pace (
    platform     VARCHAR(64) NOT NULL,
    app_key      VARCHAR(64) NOT NULL,
    next_call_ms BIGINT      NOT NULL,
    PRIMARY KEY (platform, app_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
