#!/usr/bin/env bash
# Builds .venv-ref: the official PyTorch reference (pocket-tts 4.0.1) used ONLY by the parity
# tests, through subprocesses. torch 2.13.0 resolves to the CPU wheel already on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if .venv-ref/bin/python -c "import pocket_tts, torch" 2>/dev/null; then
    exit 0
fi
rm -rf .venv-ref
"$PY" -m venv .venv-ref
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu: the CPU wheel (about 200 MB) instead of
# PyPI's default CUDA build (several GB) on an online machine.
.venv-ref/bin/pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
.venv-ref/bin/pip install -q pocket-tts==4.0.1
