# Two entry points: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench install clean chromium

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

# The browser tests (drawing page, results page) drive Debian's chromium, never a downloaded browser build;
# CI runs as root and installs it, elsewhere those tests skip with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "chromium is not installed and this is not root: the browser test will be skipped"; fi; }

test: lint chromium
	$(PY) -m pytest -q --durations=15

bench: $(STAMP)
	$(PY) -m benchmarks.run train translate

clean:
	rm -rf $(VENV) results runs .pytest_cache test-output
