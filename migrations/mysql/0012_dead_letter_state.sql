-- Dead letters are worked through: `orderflow dead-letters --replay` or
-- `--discard` settles one. `state` is 'open', 'replayed' or 'discarded';
-- `settled_at` says when it stopped being open. Letters stored before this
-- migration are open.
ALTER TABLE dead_letters
    ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'open',
    ADD COLUMN settled_at VARCHAR(32) NULL,
    -- The open letters of a flow: counted by `orderflow status` and the web page,
    -- and looked up before a letter is stored, so a record read again (a lookback,
    -- a retried page) is set aside once.
    ADD INDEX dead_letters_flow_state (flow, state);
