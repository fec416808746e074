"""One-off studies behind figures in bench/RESULTS.md that the `edgeloop bench` cases do not cover (run with `python -m bench.studies.NAME ...`)."""
