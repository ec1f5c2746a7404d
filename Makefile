# Two entry points: `make demo` and `make test`. Each creates or reuses .venv
# and installs the project into it, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

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
		--out artifacts/images/model.joblib --report artifacts/images/report
	$(PY) train.py --cohort melanoma --n 4000 --seed 0 \
		--out artifacts/model.joblib --report artifacts/report

# One OpenMP thread: gradient boosting's thread pool slows to a crawl on a busy machine.
test: $(STAMP)
	$(PY) -m ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

clean:
	rm -rf artifacts .pytest_cache
