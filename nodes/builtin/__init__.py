"""Built-in node classes: every `uses:` name in `nodes.catalog` points into this package, one module per domain."""
