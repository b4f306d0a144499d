# stabcheck: `make demo` runs the demo probe, `make test` the tests; both set up .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Set once scripts/install-chromium.sh has run (it never fails: where chromium cannot be
# installed it says so, and the headless-browser test of the HTML report is skipped).
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: demo test test-slow test-all test-fast lint bench bench-fidelity bench-validity clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	touch $(STAMP)

$(CHROMIUM_STAMP): scripts/install-chromium.sh | $(STAMP)
	sh scripts/install-chromium.sh
	touch $(CHROMIUM_STAMP)

demo: $(STAMP)
	$(BIN)/stabcheck probe configs/demo.toml --journal .stabcheck/demo-journal.jsonl; \
	  code=$$?; [ $$code -le 1 ] || exit $$code  # exit 1 = failures found, as intended

# The suite without the tests marked slow (under 10 minutes on two cores); the import
# contracts are one of its tests. Every end-to-end test is a TensorFlow start-up (6-8 s,
# CPU-bound): serial, since two pytest-xdist workers on two cores took as long and made
# the timing tests fail. Installs chromium first where it can (once), for the test that
# opens the HTML report in a real browser.
test: $(STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The slow tier alone: the memory ladder's forecasts, seeds, the OOM kills beside the
# default tier's (about 10 minutes on two cores). CI runs it after `make test`.
test-slow: $(STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q -m slow

# Everything in one run (about 20 minutes on two cores).
test-all: $(STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q

# The quick loop: no test that starts a process or imports TensorFlow (tests/conftest.py
# fails one that does under STABCHECK_TEST_FAST=1), about 10 s on two cores.
test-fast: $(STAMP)
	STABCHECK_TEST_FAST=1 $(BIN)/python -m pytest -q -m "not slow and not e2e"

# ruff, and the import rules between the parts (pyproject's import-linter contracts).
lint: $(STAMP)
	$(BIN)/ruff check stabcheck tests
	$(BIN)/lint-imports

# stabcheck's default run vs a plain model.fit loop and a process per setting on three grids
# (the 18 settings, the demo's 36, a keras.applications grid), KerasTuner, the floor
# (about 15 minutes on two quiet cores; BENCH_ARGS=--quick skips the slow parts, about 5;
# --grids small,demo,apps picks grids). Figures: bench/results/.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Does a probe train each model of bench/zoo.py as model.fit does (losses, peak memory)?
# About 14 minutes on two cores (probes that train past --steps and two probes in one
# worker included); BENCH_ARGS=--quick for 7 rows (about 1.5 minutes). Rows:
# bench/results/fidelity.json.
bench-fidelity: $(STAMP)
	$(BIN)/python bench/fidelity.py $(BENCH_ARGS)

# Does a probe's verdict predict a long plain model.fit (each problem's own epochs, two
# seeds)? The 13 problems of bench/validity_problems.py (the 4 kio_* built like the keras-io
# examples), 82 settings. About 2.7 hours on two cores, nearly all of it the long fits;
# BENCH_ARGS="--reuse-long bench/results/validity.json --tag mine" judges the probes again
# against those fits in about 5 minutes; BENCH_ARGS=--quick for 2 problems x 5 epochs.
# Rows: bench/results/validity.json.
bench-validity: $(STAMP)
	$(BIN)/python bench/validity.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .stabcheck .pytest_cache .ruff_cache *.egg-info
