"""Models the built-in nodes train on first use and cache, so a graph runs from a fresh clone with no model file."""
