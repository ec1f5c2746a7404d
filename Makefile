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
# then the main job: 4000 simulated melanoma patients with simulated follow-up scans, whose
# benchmark table and landmark tables end the output.
demo: $(STAMP)
	$(PY) train.py --cohort melanoma --n 600 --seed 0 --images --no-nested-cv \
		--out artifacts/images/model.skops --report artifacts/images/report
	$(PY) train.py --cohort melanoma --n 4000 --seed 0 --followup \
		--out artifacts/model.skops --report artifacts/report

# One OpenMP and BLAS thread: on small matrices thread pools slow to a crawl on a busy machine.
# Two processes (pytest-xdist), each running whole test modules, the slowest first
# (tests/conftest.py); TEST_PROCESSES=0 runs everything in this one.
TEST_PROCESSES ?= 2
test: $(STAMP)
	$(PY) -m ruff check .
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q \
		-n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder

# Measurements that print a table (never pass/fail) and write JSON under benchmarks/results/
# (cores, load, package versions): extraction against plain pyradiomics, 1 and 2 workers and
# Dask; prediction against the bare estimator; training time and memory by size; updating a
# model for a new site; the follow-up result under low, published and high measurement error
# and course variability; what the synthetic MRI's texture alone says; make demo by stage.
# Takes about an hour on 2 cores.
BENCH_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
bench: $(STAMP)
	$(PY) benchmarks/extraction_speed.py --n 20
	$(PY) benchmarks/extraction_scale.py
	$(BENCH_ENV) $(PY) benchmarks/prediction_speed.py
	$(BENCH_ENV) $(PY) benchmarks/training_speed.py --n 10000
	$(BENCH_ENV) $(PY) benchmarks/families.py
	$(BENCH_ENV) $(PY) benchmarks/training_scale.py
	$(BENCH_ENV) $(PY) benchmarks/site_update.py --seeds 20
	$(BENCH_ENV) $(PY) benchmarks/validation_agreement.py --n 800 --seed 3
	$(BENCH_ENV) $(PY) benchmarks/followup_sensitivity.py --n 4000 --seed 0
	$(BENCH_ENV) $(PY) benchmarks/image_signal.py --n 300
	$(BENCH_ENV) $(PY) benchmarks/demo_stages.py

clean:
	rm -rf artifacts .pytest_cache
