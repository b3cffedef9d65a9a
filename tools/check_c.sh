#!/usr/bin/env bash
# Compiles every C kernel (csrc/**/*.c) on its own with -Wall -Wextra -Werror, for x86-64 (gcc)
# and for aarch64 (Debian's gcc-aarch64-linux-gnu cross compiler, installed when missing), at
# -O2 and at the build's -O3 (setup.py's flags; some warnings only show when optimising), then
# links the -O3 objects into a shared library with no undefined symbol besides libc / libm /
# libpthread: the aarch64 pass checks that the portable fallback builds off x86.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sources=(csrc/*/*.c)
includes=(-Icsrc/common -Icsrc/flow_lm -Icsrc/mimi)
# -fopenmp-simd as in setup.py: without it the `omp simd` hints are unknown pragmas.
base=(-Wall -Wextra -Werror -std=gnu11 -fopenmp-simd -c)
fail=0
for cc in gcc aarch64-linux-gnu-gcc; do
    for level in O2 O3; do
        opt=(-O2)
        [ "$level" = O3 ] && opt=(-O3 -fno-math-errno -fwrapv -fPIC)
        dir="$out/$cc-$level"
        mkdir -p "$dir"
        for src in "${sources[@]}"; do
            if ! "$cc" "${base[@]}" "${opt[@]}" "${includes[@]}" "$src" \
                -o "$dir/$(basename "$src" .c).o"; then
                echo "check_c: $cc -$level failed on $src" >&2
                fail=1
            fi
        done
    done
    if [ "$fail" = 0 ] && ! "$cc" -shared -Wl,--no-undefined -o "$out/$cc.so" \
        "$out/$cc-O3"/*.o -lm -lpthread; then
        echo "check_c: $cc could not link the kernels" >&2
        fail=1
    fi
done
if [ "$fail" = 0 ]; then
    echo "check_c: ${#sources[@]} C files clean and linked (gcc, aarch64-linux-gnu-gcc)"
fi
exit "$fail"
