# The two commands of the README: `make demo` and `make test`.
# Both create .venv from the committed lock file (uv.lock) when it is missing or stale.
UV_VERSION := 0.13.9
UV := .tools/bin/uv
PY := .venv/bin/python
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-slow venv clean-venv

venv: .venv/.synced

$(UV):
	python3 -m pip install --quiet --disable-pip-version-check --target .tools uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra dev --python 3.11 --compile-bytecode
	touch $@

demo: .venv/.synced
	$(PY) -m dksflax.cli demo --workdir demo_out

test: .venv/.synced
	$(PY) -m pytest -q -n 2 --durations=15

test-slow: .venv/.synced
	$(PY) -m pytest -q -n 2 -m slow

clean-venv:
	rm -rf .venv .tools
