# Every target sets up .venv first when it is missing or requirements.txt changed.
PY := .venv/bin/python
# `make bench BENCH_ARGS=--with-1m` adds the 1M-product run (an hour or more).
BENCH_ARGS ?=
VENV_STAMP := .venv/.installed

.PHONY: run test protos protos-check bench secrets clean-venv

run: $(VENV_STAMP)
	$(PY) -m scripts.run_demo

test: $(VENV_STAMP)
	$(PY) scripts/gen_protos.py --check
	$(PY) -m pytest tests

protos: $(VENV_STAMP)
	$(PY) scripts/gen_protos.py

protos-check: $(VENV_STAMP)
	$(PY) scripts/gen_protos.py --check

bench: $(VENV_STAMP)
	$(PY) -m bench.run_all $(BENCH_ARGS)

# The token files docker-compose.yml mounts as secrets (standard library only: no .venv needed).
secrets:
	python3 -m scripts.make_secrets

$(VENV_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(VENV_STAMP)

clean-venv:
	rm -rf .venv
