# The two commands of a fresh machine:
#   make demo   set up .venv (pinned torch trio + Hub + test extras) and run the main job
#   make test   set up .venv if needed and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt examples/third_party_plugin/pyproject.toml examples/forecast_plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision torchaudio
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	$(BIN)/python -m pip install -q -e examples/third_party_plugin
	$(BIN)/python -m pip install -q -e examples/forecast_plugin
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not slow and not data"

bench: $(STAMP)
	$(BIN)/python benchmarks/text_classify.py

clean:
	rm -rf $(VENV) .pytest_cache
