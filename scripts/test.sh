#!/usr/bin/env bash
# The test command: installs what the tests need, starts the services they use, then runs
# ruff, mypy and pytest. Safe to run again: each setup step skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Services and system packages (Docker engine and sandbox image, PostgreSQL, model servers):
# each script is sourced so it can export the variables the tests read.
for step in scripts/setup.d/*.sh; do
    [ -e "$step" ] || continue
    echo "== setup: $step"
    # shellcheck source=/dev/null
    source "$step"
done

echo "== ruff"
python3 -m ruff check .
echo "== mypy"
python3 -m mypy
echo "== pytest"
python3 -m pytest "$@"
