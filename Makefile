# The two commands of the README: `make demo` (set up, run the demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check pytest bench eval system-deps data clean lab lab-down lab-status lab-campaign

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsagent demo

system-deps:
	bash scripts/install-system-deps.sh

check: $(STAMP)
	$(BIN)/ruff check src tests examples scripts lab
	$(BIN)/ruff format --check src tests examples scripts lab
	$(BIN)/mypy src
	$(BIN)/lint-imports --no-cache

pytest: $(STAMP) system-deps
	$(BIN)/pytest -q

test: check pytest

data:
	mkdir -p .data
	for f in ../shared/datasets/*.tar.gz; do tar -xzf "$$f" -C .data; done

eval: $(STAMP) data
	$(BIN)/opsagent eval .data/sockshop-rcd .data/petshop .data/nezha --jobs 2 --json reports/eval.json --html reports/eval.html

bench: $(STAMP)
	$(PY) -m bench

# The live lab (docs/LAB.md): a shop of real processes, Prometheus, Alertmanager and `opsagent serve`.
SEED ?= 1
FAULTS ?= 8
OUT ?= reports/lab-campaign.json

lab: $(STAMP) system-deps
	$(PY) -m lab up

lab-down:
	$(PY) -m lab down

lab-status:
	$(PY) -m lab status

lab-campaign: $(STAMP) system-deps
	$(PY) -m lab campaign --seed $(SEED) --faults $(FAULTS) --out $(OUT)

clean:
	rm -rf $(VENV) .opsagent .mypy_cache .ruff_cache .pytest_cache
