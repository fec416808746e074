# edgeloop: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench bench-extras clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: a looser range would make pip fetch a multi-GB CUDA build.
	@echo "edgeloop: installing torch 2.13.0 (CPU) and the project into $(VENV); pip shows its progress"
	$(PY) -m pip install --progress-bar on torch==2.13.0
	$(PY) -m pip install --progress-bar on -e '.[test]'
	touch $(STAMP)

# The demo ends by itself after 32 gestures (about 4 s once started); --duration is only a bound.
demo: $(STAMP)
	@echo "edgeloop: the first run trains the demo's gesture classifier (seconds, cached in out/pretrained/); docs/demo.md"
	$(VENV)/bin/edgeloop run examples/demo.yaml --duration 5

SOURCES := runtime nodes models sim_hw bench tests

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(VENV)/bin/mypy runtime sim_hw models nodes

test: $(STAMP) lint typecheck
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench-extras: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'

# Quick variants of the runtime benchmarks; `edgeloop bench NAME --json out.json` runs one at full size.
bench: $(STAMP)
	mkdir -p out
	for b in transport stop; do $(VENV)/bin/edgeloop bench $$b --quick --json out/bench-$$b.json || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
