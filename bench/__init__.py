"""edgeloop benchmarks: `edgeloop bench NAME [--json PATH]`."""
