# The two set-up commands of the README: `make run` (demo + Prefect UI) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run test lint system bench clean-sandbox

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# System packages (openssh-server, chromium for the UI test) and the sandbox's login user.
system:
	UPKEEP_WITH_CHROMIUM=$(if $(filter test,$(MAKECMDGOALS)),1,0) bash sandbox/setup.sh

run: $(VENV)/.installed system
	$(VENV)/bin/upkeep demo

# Lint and types (configured in pyproject.toml): `make test` runs them first.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/mypy

# Two workers, each with its own stack, taking a module at a time, the longest first (tests/integration/conftest.py).
test: $(VENV)/.installed lint system
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# UPKEEP_WITH_BENCH=1 reaches `system` too (a target's variables apply to its prerequisites): logrotate, python3-apt,
# lynis.
bench: export UPKEEP_WITH_BENCH := 1
bench: $(VENV)/.installed system
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m benchmarks.fanout_uptime
	$(PY) -m benchmarks.log_rotation
	$(PY) -m benchmarks.rolling_update_apt
	$(PY) -m benchmarks.security_audit
	$(PY) -m benchmarks.tls_endpoints
	$(PY) -m benchmarks.capacity_forecast

clean-sandbox:
	$(VENV)/bin/upkeep sandbox down
	if [ -L .sandbox ]; then rm -rf "$$(readlink -f .sandbox)"; fi
	rm -rf .sandbox
