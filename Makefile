# The two commands of the README: `make demo` (set up, run the demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check pytest bench eval system-deps data clean

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
	$(BIN)/ruff check src tests examples scripts
	$(BIN)/ruff format --check src tests examples scripts
	$(BIN)/mypy src

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

clean:
	rm -rf $(VENV) .opsagent .mypy_cache .ruff_cache .pytest_cache
