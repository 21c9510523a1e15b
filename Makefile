# One command each on a fresh machine: `make test`, `make demo` (both install what they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch first, pinned, in one pip call: these wheels satisfy pyproject's ranges, so the
# package install below never pulls another torch build.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install test demo bench lint mutate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q --durations=15

demo: install
	$(BIN)/merv demo

bench: install
	$(BIN)/python -m benchmarks.run

# Mutation check (not part of `make test`): realistic bugs, one at a time; each must fail a test.
mutate: install
	$(BIN)/python tests/mutate.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf demo_out bench_out .pytest_cache
