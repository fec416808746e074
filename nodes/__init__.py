"""edgeloop's nodes: built-in node classes, pure sensor and swarm libraries, science commands, first-run models."""
