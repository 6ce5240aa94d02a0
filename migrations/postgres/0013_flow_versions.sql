-- Every version of a flow file saved through the editor, and its drafts,
-- PostgreSQL flavour. See the SQLite flavour for the meaning of the columns.
CREATE TABLE IF NOT EXISTS flow_versions (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow     TEXT   NOT NULL,
    version  TEXT   NOT NULL,
    yaml     TEXT   NOT NULL,
    saved_by TEXT   NOT NULL,
    role     TEXT   NOT NULL,
    saved_at TEXT   NOT NULL,
    draft    BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS flow_versions_flow_id ON flow_versions (flow, id);
