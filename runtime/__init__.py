"""edgeloop runtime: graphs, nodes, codec, transports, launcher and CLI."""
