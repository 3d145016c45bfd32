"""The browser's HTTP layer: routes (``routes/``), what they share (``deps``, ``templating``),
the error pages (``errors``) and the response headers (``middleware``)."""
