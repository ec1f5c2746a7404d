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

demo: $(STAMP)
	$(PY) train.py --cohort melanoma --n 4000 --seed 0 --out artifacts/model.joblib --report artifacts/report

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

clean:
	rm -rf artifacts .pytest_cache
