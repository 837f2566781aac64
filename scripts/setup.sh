#!/usr/bin/env bash
# Create .venv at the repository root (if missing) and install the pinned requirements.
# Idempotent and fast when nothing changed: a stamp records what was installed.
# Usage: bash scripts/setup.sh [requirements file]   (default requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.synthmed-$(basename "$req").sha256"
want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] .venv is up to date with $req"
else
  echo "[setup] installing $req into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$req"
  echo "$want" > "$stamp"
fi
# Real data: link the MedMNIST files of a ../shared/data checkout into data/medmnist/ (where
# synthmed looks by default) unless the user already put files there or chose another folder.
if [ -z "${SYNTHMED_MEDMNIST_ROOT:-}" ] && [ -d ../shared/data ]; then
  mkdir -p data/medmnist
  for f in ../shared/data/*mnist*.npz; do
    [ -e "$f" ] && [ ! -e "data/medmnist/$(basename "$f")" ] && ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" data/medmnist/ && echo "[setup] linked $f into data/medmnist/"
  done
fi
true
