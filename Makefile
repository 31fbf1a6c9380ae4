# Two entry points: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench install clean browser

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The constraints file pins torch to the CPU build so no dependency can pull a CUDA torch.
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pixforge demo --out results

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

test: lint browser
	$(PY) -m pytest -q --durations=15

# Headless Chromium for the browser tests: Debian's package (CI runs as root). Without it those tests skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium not installed (needs root): browser tests will skip"

bench: $(STAMP)
	$(PY) -m benchmarks.run train translate

clean:
	rm -rf $(VENV) results runs .pytest_cache
