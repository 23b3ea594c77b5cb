#!/bin/sh
# Set up (or update) .venv and run every check: ruff, ruff format, mypy --strict, pytest.
# This is the README's test command; .ci/run calls it after installing Chromium.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
