# Two entry points: `make demo` and `make test`. Each creates or reuses .venv
# and installs the project into it, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The image path first (600 patients with synthetic MRI, pyradiomics, with/without images),
# then the main job: 4000 simulated melanoma patients, whose benchmark table ends the output.
demo: $(STAMP)
	$(PY) train.py --cohort melanoma --n 600 --seed 0 --images --no-nested-cv \
		--out artifacts/images/model.skops --report artifacts/images/report
	$(PY) train.py --cohort melanoma --n 4000 --seed 0 \
		--out artifacts/model.skops --report artifacts/report

# One OpenMP and BLAS thread: on small matrices thread pools slow to a crawl on a busy machine.
test: $(STAMP)
	$(PY) -m ruff check .
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

# Measurements that print (never pass/fail): extraction speed, updating a model for a new site.
bench: $(STAMP)
	$(PY) benchmarks/extraction_speed.py --n 20
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) benchmarks/site_update.py --seeds 12

clean:
	rm -rf artifacts .pytest_cache
