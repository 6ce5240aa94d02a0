-- The pace of each app key's calls, shared by every process on the database
-- (without Redis): when the key's next call may go, in milliseconds since 1970
-- by the database's clock. A process books a few calls at a time by moving it
-- forward, so a process started after another one (a restart, a cron-started
-- `run`) keeps to the same sliding-minute limit instead of starting with a fresh
-- allowance. See docs/resilience.md.
CREATE TABLE IF NOT EXISTS app_call_pace (
    platform     TEXT    NOT NULL,
    app_key      TEXT    NOT NULL,
    next_call_ms INTEGER NOT NULL,
    PRIMARY KEY (platform, app_key)
);
