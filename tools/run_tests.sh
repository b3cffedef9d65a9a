#!/usr/bin/env bash
# The test command (README, CI): installs this package into .venv with its dev extras, builds
# the reference side venv, then runs lint and the whole test suite with coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if ! command -v gcc >/dev/null; then
    apt-get update -qq && apt-get install -y -qq build-essential
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q ".[dev]"
tools/setup_reference_venv.sh
.venv/bin/ruff check .
.venv/bin/mypy pocket_tts
# Our C, alone: no warning under -Wall -Wextra, and the portable fallback builds for aarch64.
tools/check_c.sh
# The console script (not `python -m pytest`) keeps the source tree's uncompiled pocket_tts/
# off sys.path, so the tests run against the installed, compiled package.
.venv/bin/pytest -q --cov --cov-report=term --cov-fail-under=80 \
    -p no:cacheprovider "$@"
# Short benchmark pass against the reference in the same run; fails only on a gross
# regression (real-time factor under 0.7x the reference's; normally 1.2-2.7x better), never
# on absolute times: these machines are noisy.
.venv/bin/python benchmarks/compare.py --quick --configs english_2026-10 --min-rtf-ratio 0.7 \
    --json artifacts/bench.json
