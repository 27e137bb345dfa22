# `make build` and `make test` set up everything on a fresh machine: a virtual environment in
# .venv with the pinned dependencies (constraints.txt), then the job itself.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: build test setup clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default model (cogact-tiny): calibrate, rewrite, export, validate.
build: $(STAMP)
	$(VENV)/bin/vlacompile build --layers 22 --tokens 56

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
