# prunekit — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint readme-check data bench-smoke clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Real data from Debian packages (Fashion-MNIST IDX files, WordNet 3.0). Optional:
# without root or apt the benchmarks that need them say so; no test needs them.
data:
	@if [ -d /usr/share/fashion-mnist ] || dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then :; \
	 elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist wordnet-base >/dev/null) \
	   || echo "warning: could not install dataset-fashion-mnist/wordnet-base (benchmarks on real data will be skipped)"; \
	 else echo "note: run as root to install dataset-fashion-mnist and wordnet-base"; fi
	@dpkg -s wordnet-base >/dev/null 2>&1 || ( [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null ) || true

demo: $(STAMP)
	$(VENV)/bin/prunekit demo

lint: $(STAMP)
	$(VENV)/bin/ruff check prunekit tests benchmarks examples

# README result blocks must equal what benchmarks/results/*.json say (python -m benchmarks.readme)
readme-check: $(STAMP)
	$(PY) -m benchmarks.readme --check

test: $(STAMP) data lint readme-check
	$(VENV)/bin/pytest -n 2 --dist loadfile tests

bench-smoke: $(STAMP)
	$(PY) -m benchmarks.smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
