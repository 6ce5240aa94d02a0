-- Each flow keeps its own cursor: a stream is now named after the flow and node
-- reading it (`orders.increment/<flow>/<node>`). `sync_cursors.stream` is TEXT
-- here, so only MySQL / MariaDB widen the column; this file keeps the three
-- backends' migrations numbered alike.
SELECT 1;
