"""The browser's settings (``config``)."""
