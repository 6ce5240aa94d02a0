-- Every version of a flow file saved through the editor, and its drafts, MySQL /
-- MariaDB flavour. See the SQLite flavour for the meaning of the columns. A flow
-- name is at most 64 characters (the editor's name rule); `yaml` is LONGTEXT
-- since a flow file may reach 1 MiB.
CREATE TABLE IF NOT EXISTS flow_versions (
    id       BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    flow     VARCHAR(64)  NOT NULL,
    version  VARCHAR(64)  NOT NULL,
    yaml     LONGTEXT     NOT NULL,
    saved_by VARCHAR(191) NOT NULL,
    role     VARCHAR(16)  NOT NULL,
    saved_at VARCHAR(32)  NOT NULL,
    draft    BIGINT       NOT NULL,
    INDEX flow_versions_flow_id (flow, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
