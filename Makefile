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

LESION_QUESTION := Is there a nodule, mass or cyst in this image? Name it and draw a box around each lesion, or answer normal.

# The main job: a reasoned, grounded report on the bundled chest radiograph (real, so the demo model's answer there
# is meaningless, as the report says), and on a held-out synthetic lesion case drawn on that radiograph, shown
# beside its truth in out/lesion.html.
demo: examples
	mkdir -p out
	$(VENV)/bin/evlf info examples/images/*
	$(VENV)/bin/evlf diagnose examples/images/chest_cr.dcm --out out/report.json --html out/report.html --md out/report.md
	$(VENV)/bin/evlf diagnose examples/images/lesion_case.png --modality CR --task grounding --question "$(LESION_QUESTION)" \
		--out out/lesion_report.json --html out/lesion_report.html --md out/lesion_report.md
	$(PY) examples/lesion_page.py out/lesion_report.json out/lesion_report.html out/lesion.html

# Rebuild the shipped demo model from its seed (detection head, SFT, GRPO, then the pipeline evaluation that the
# model card reports; see evlf/models/demo/MODEL_CARD.md).
demo-model: venv
	$(PY) -m evlf.training.demo_model --seed 0

test: venv
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) examples/images out
