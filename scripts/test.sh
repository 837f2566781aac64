#!/usr/bin/env bash
# Set up and run the tests: bash scripts/test.sh [--fast] [extra pytest args]
# --fast: the fast loop, every test but those marked browser, train, workers, load or ray
# (pytest.ini; docs/testing.md), on one pytest-xdist process per core
# (SYNTHMED_TEST_PROCESSES=N for another count). Without it, everything runs in one process,
# in order (as .ci/run does).
# Installs Debian's chromium for tests/browser when missing (scripts/setup_browser.sh).
# Uses the real PneumoniaMNIST file in ../shared/data when present (SYNTHMED_TEST_MEDMNIST overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
FAST_LOOP="not browser and not train and not workers and not load and not ray"
fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi
bash scripts/setup.sh requirements-test.txt
[ "$fast" -eq 1 ] || bash scripts/setup_browser.sh
set +e
if [ "$fast" -eq 1 ]; then
  .venv/bin/python -m pytest -m "$FAST_LOOP" -n "${SYNTHMED_TEST_PROCESSES:-auto}" --dist worksteal "$@"
else
  .venv/bin/python -m pytest "$@"
fi
rc=$?
set -e
# pytest exit 5 = no tests were collected (e.g. a -k filter matched nothing): not a failure.
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests (exit 5); treated as success"
  exit 0
fi
exit "$rc"
