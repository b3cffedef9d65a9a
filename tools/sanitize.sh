#!/usr/bin/env bash
# Build pocket_tts._native with a sanitizer into a scratch copy of the tree and run tests on it.
#
#   tools/sanitize.sh asan [pytest args]   # ASan + UBSan: the kernel and pipeline tests
#   tools/sanitize.sh tsan [pytest args]   # ThreadSanitizer: the threaded tests
#
# The instrumented module is found first on PYTHONPATH; the sanitizer runtime is preloaded
# into the (uninstrumented) interpreter. Reference subprocesses (PyTorch) run without it
# (tests/conftest.py drops LD_PRELOAD for them).
# Any report fails the run (halt_on_error / abort_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: tools/sanitize.sh asan|tsan [pytest args]}
shift
case "$mode" in
    asan)
        san=address,undefined
        preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
        tests=(tests/test_kernels.py tests/test_conv_kernels.py tests/test_flow_lm.py
               tests/test_mimi.py tests/test_native_api.py tests/test_tts_model.py
               tests/test_voice.py)
        ;;
    tsan)
        san=thread
        preload="$(gcc -print-file-name=libtsan.so)"
        tests=(tests/test_concurrency.py tests/test_engine_streams.py
               "tests/test_flow_lm.py::test_shared_products_bit_identical"
               "tests/test_mimi.py::test_frame_by_frame_equals_batch_bit_for_bit")
        ;;
    *) echo "unknown mode $mode (asan or tsan)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && tests=("$@")
build="${TMPDIR:-/tmp}/pocket-tts-$mode"
rm -rf "$build" && mkdir -p "$build"
cp -r setup.py pyproject.toml csrc pocket_tts "$build/"
rm -f "$build"/pocket_tts/*.so "$build"/pocket_tts/_native.c
(cd "$build" && POCKET_TTS_SANITIZE=$san "$OLDPWD/.venv/bin/python" setup.py -q build_ext --inplace \
    >"$build/build.log" 2>&1) || { tail -30 "$build/build.log"; exit 1; }
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# Refuse to run on anything but the instrumented build.
PYTHONPATH="$build" LD_PRELOAD="$preload" .venv/bin/python -P -c \
    "import sys, pocket_tts._native as n; sys.exit(not n.__file__.startswith('$build/'))" \
    || { echo "the instrumented module is not the one imported" >&2; exit 1; }
# The console script (not python -m) keeps the source tree off sys.path: the build is found.
PYTHONPATH="$build" LD_PRELOAD="$preload" \
    .venv/bin/pytest -q -p no:cacheprovider -p no:cov "${tests[@]}"
