# `make demo` and `make test` are all the set-up there is: each creates or reuses the
# project-local virtual environment .venv, installs the pinned set into it, and runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
T5_WHEEL = $$($(BIN)/python tools/repack_t5_wheel.py $(VENV)/wheelhouse)
INSTALL_INPUTS := pyproject.toml constraints.txt tools/repack_t5_wheel.py
INSPECT_FLAGS ?= --lengths inputs=512,targets=128 --examples 1 --sample 100

.PHONY: demo contrast inspect test venv venv-test constraints bench clean

demo: $(VENV)/.installed
	$(BIN)/python tools/demo.py --run_dir runs/demo

# Instruction tuning set against single-task fine-tuning, prompt tuning and LoRA, from the
# demo's baseline (tools/contrast.py; reuses runs/demo, trains and evaluates what it lacks).
contrast: $(VENV)/.installed
	$(BIN)/python tools/contrast.py --run_dir runs/demo

inspect: $(VENV)/.installed
	$(BIN)/flan-tune inspect flan_offline $(INSPECT_FLAGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

# flan-tune against transformers side by side (tools/benchmark.py; about 10 min on 2 cores).
bench: $(VENV)/.installed-test
	$(BIN)/python tools/benchmark.py --json runs/benchmark.json

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The t5 wheel is repacked to depend on seqio / tensorflow-datasets instead of their
# nightly twins (see tools/repack_t5_wheel.py); `pip check` must stay clean.
$(VENV)/.installed: $(VENV)/bin/python $(INSTALL_INPUTS)
	$(PIP) install --quiet -c constraints.txt "$(T5_WHEEL)" -e .
	$(PIP) check
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	$(PIP) check
	touch $@

# Re-resolve the pinned set after editing pyproject.toml's ranges.
constraints: $(VENV)/bin/python
	$(PIP) install --quiet "$(T5_WHEEL)" -e ".[test]"
	$(PIP) check
	{ head -2 constraints.txt; $(PIP) freeze --exclude-editable | sed 's|^t5 @ .*|t5==0.9.4|'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
