-- Each flow keeps its own cursor: a stream is now named after the flow and node
-- reading it (`orders.increment/<flow>/<node>`), longer than the 64 characters
-- the column held. 255 keeps the key (64 + 191 + 255 characters of utf8mb4)
-- under InnoDB's 3072 bytes.
ALTER TABLE sync_cursors MODIFY stream VARCHAR(255) NOT NULL;
