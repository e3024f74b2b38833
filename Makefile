# Every target sets up .venv first when it is missing or requirements.txt or a pyproject.toml changed.
PY := .venv/bin/python
# `make bench BENCH_ARGS=--with-1m` adds the 1M-product run (an hour or more).
BENCH_ARGS ?=
# pytest processes for `make test` (pytest-xdist; tests/conftest.py keeps a test module on one of
# them and the Milvus modules together); `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2
VENV_STAMP := .venv/.installed
# The real Milvus server for the Milvus store's tests and bench, in its own venv (old pins).
MILVUS_STAMP := .venv-milvus/.installed

.PHONY: run test protos protos-check contract bench secrets clean-venv

run: $(VENV_STAMP)
	$(PY) -m scripts.run_demo

test: $(VENV_STAMP) $(MILVUS_STAMP)
	$(PY) scripts/gen_protos.py --check
	python3 scripts/contract.py
	$(PY) -m pytest -n $(TEST_WORKERS) tests

protos: $(VENV_STAMP)
	$(PY) scripts/gen_protos.py

protos-check: $(VENV_STAMP)
	$(PY) scripts/gen_protos.py --check

# buf lint and buf breaking against protos/CONTRACT_BASE (installs the pinned Buf CLI into
# tools/node_modules with npm ci on first use; needs Node.js and npm, not .venv).
contract:
	python3 scripts/contract.py

bench: $(VENV_STAMP) $(MILVUS_STAMP)
	$(PY) -m bench.run_all $(BENCH_ARGS)

# The token files docker-compose.yml mounts as secrets (standard library only: no .venv needed).
secrets:
	python3 -m scripts.make_secrets

# The project (servers and `client`) and the client distribution (`recsys_client` and the one
# `recsys` command), both editable from this checkout, with requirements.txt's exact pins.
$(VENV_STAMP): requirements.txt pyproject.toml client/pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e ./client
	touch $(VENV_STAMP)

$(MILVUS_STAMP): requirements-milvus-server.txt
	test -x .venv-milvus/bin/python || python3 -m venv .venv-milvus
	.venv-milvus/bin/python -m pip install --disable-pip-version-check -q -r requirements-milvus-server.txt
	touch $(MILVUS_STAMP)

clean-venv:
	rm -rf .venv .venv-milvus
