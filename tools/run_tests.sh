#!/usr/bin/env bash
# The test command (README, CI): installs this package into .venv with its dev extras, checks
# the C on its own (tools/check_c.sh), builds the reference side venv, then runs lint (ruff,
# mypy), the whole test suite with coverage, and a parity subset on the portable kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
# gcc for the C; curl, nginx and Debian's chromium for the server's tests (a real client, a
# real load balancer, a real browser; Playwright drives the installed chromium, it downloads
# none). The tests start nginx themselves, on loopback, with their own configuration.
missing=()
command -v gcc >/dev/null || missing+=(build-essential)
command -v curl >/dev/null || missing+=(curl)
command -v chromium >/dev/null || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Verbose into a log: the build backend's own output (pip indents it) must carry no warning.
mkdir -p artifacts
.venv/bin/pip install -v ".[dev]" >artifacts/install.log 2>&1 || { tail -40 artifacts/install.log; exit 1; }
if grep -E '^  .*([Ww]arning|WARNING|[Dd]eprecat)' artifacts/install.log \
        | grep -v -e 'byte-compiling is disabled' -e "WARNING: Location '"; then
    echo "the install printed the warnings above (artifacts/install.log)" >&2
    exit 1
fi
# The C alone, -Wall -Wextra -Werror, for x86-64 and aarch64 (the portable fallback).
tools/check_c.sh
tools/setup_reference_venv.sh
.venv/bin/ruff check .
.venv/bin/mypy pocket_tts
# The console script (not `python -m pytest`) keeps the source tree's uncompiled pocket_tts/
# off sys.path, so the tests run against the installed, compiled package.
.venv/bin/pytest -q --cov --cov-report=term --cov-fail-under=80 \
    -p no:cacheprovider "$@"
# The fuzz targets' corpora (seeds and every finding kept as a regression), each input once:
# seconds (tools/fuzz/common.py; fuzzing itself runs for minutes, see docs/reliability.md).
for target in safetensors config audio text; do
    .venv/bin/python "tools/fuzz/fuzz_$target.py" --replay "tools/fuzz/corpus/$target"
done
# The same kernels on their portable C fallback (POCKET_TTS_FORCE_GENERIC): every kernel
# against its float64 twin, and the flow LM and the Mimi decoder against the reference (~2.5
# min; the whole suite takes an hour this way, see docs/performance.md).
POCKET_TTS_FORCE_GENERIC=1 .venv/bin/pytest -q -p no:cacheprovider tests/test_kernels.py \
    tests/test_conv_kernels.py tests/test_flow_lm.py "tests/test_mimi.py::test_decoder_parity"
# Short benchmark pass against the reference in the same run; fails only on a gross
# regression (real-time factor under 0.7x the reference's; normally 1.2-2.7x better), never
# on absolute times: these machines are noisy.
.venv/bin/python benchmarks/compare.py --quick --configs english_2026-10 --min-rtf-ratio 0.7 \
    --json artifacts/bench.json
