#!/usr/bin/env bash
# Set everything up and start the app: bash scripts/app.sh [extra streamlit args]
# Listens on 127.0.0.1:8501 (see .streamlit/config.toml); open http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
mkdir -p data
exec .venv/bin/python -m ui.serve "$@"   # = streamlit run app.py, its modules imported at start
