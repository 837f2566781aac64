#!/usr/bin/env bash
# Set up and run the tests: bash scripts/test.sh [extra pytest args]
# Installs Debian's chromium for tests/browser when missing (scripts/setup_browser.sh).
# Uses the real PneumoniaMNIST file in ../shared/data when present (SYNTHMED_TEST_MEDMNIST overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-test.txt
bash scripts/setup_browser.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 = no tests were collected (e.g. a -k filter matched nothing): not a failure.
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests (exit 5); treated as success"
  exit 0
fi
exit "$rc"
