# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The local CPU build of torch; GPU users: see README (TORCH_SPEC="torch" or their CUDA build).
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv demo test examples demo-model clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

examples: venv
	$(PY) examples/fetch_examples.py

# The main job: a reasoned, grounded report on the bundled chest radiograph.
demo: examples
	mkdir -p out
	$(VENV)/bin/evlf info examples/images/*
	$(VENV)/bin/evlf diagnose examples/images/chest_cr.dcm --out out/report.json --html out/report.html --md out/report.md

# Rebuild the shipped demo model from its seed (SFT then GRPO on lesions-train; see evlf/models/demo/MODEL_CARD.md).
demo-model: venv
	$(PY) -m evlf.training.demo_model --seed 0

test: venv
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) examples/images out
