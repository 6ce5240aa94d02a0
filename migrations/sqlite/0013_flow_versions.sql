-- Every version of a flow file saved through the editor (`orderflow serve`'s
-- /api/flows/{name}), and its drafts. A row is never changed: restoring a version
-- saves its text again as a new row. `flow` is the file's name without `.yaml`;
-- `version` is the first 16 hex characters of the SHA-256 of `yaml`, the same
-- value the file's ETag carries. `draft` is 1 for a draft (kept beside the file,
-- which it never replaced) and 0 for a version written to the file. A flow's
-- draft is its newest row when that row is a draft: a later save clears it.
-- `role` is `editor` (the editor token) or `file` (the text found on disk before
-- the first save through the editor, kept so it can be restored).
CREATE TABLE IF NOT EXISTS flow_versions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    flow     TEXT    NOT NULL,
    version  TEXT    NOT NULL,
    yaml     TEXT    NOT NULL,
    saved_by TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    saved_at TEXT    NOT NULL,
    draft    INTEGER NOT NULL
);

-- A flow's history, newest first, is the one query.
CREATE INDEX IF NOT EXISTS flow_versions_flow_id ON flow_versions (flow, id);
