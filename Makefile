# stabcheck: `make demo` runs the demo probe, `make test` the tests; both set up .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/stabcheck probe configs/demo.toml --journal .stabcheck/demo-journal.jsonl; \
	  code=$$?; [ $$code -le 1 ] || exit $$code  # exit 1 = failures found, as intended

# The whole suite, slow tests included (about 5 minutes on two cores).
test: $(STAMP)
	$(BIN)/python -m pytest -q

# Skip the slow tests for a quick loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check stabcheck tests

clean:
	rm -rf $(VENV) .stabcheck .pytest_cache .ruff_cache *.egg-info
