"""Build the C/Cython engine: one extension module, ``pocket_tts._native``.

``pocket_tts/_native.pyx`` includes its ``_native_*.pxi`` parts (kernels, packing, flow LM,
Mimi) and is linked once with every C kernel under ``csrc/`` (common/, flow_lm/, mimi/), so the
process has one CPU-dispatch switch and one shared-product slot.
The kernels are compiled for the baseline ISA; AVX2/FMA/F16C variants carry
``__attribute__((target(...)))`` and are chosen at run time (csrc/common/cpu.c), so the build is
portable. No ``-march=native`` (the wheel must run on any x86-64 CPU) and no ``-ffast-math`` (it
flips FTZ/DAZ process-wide and folds NaN checks). ``-Wall -Wextra``: the kernels compile clean
(``tools/check_c.sh`` enforces it with ``-Werror``, for x86-64 and aarch64), and so does
Cython's generated module as long as the ``.pxi`` code keeps its C types straight.
"""

import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("POCKET_TTS_DEBUG_CYTHON", "0") != "0"
# tools/sanitize.sh: "address,undefined" or "thread" builds an instrumented module (tests only).
SANITIZE = os.environ.get("POCKET_TTS_SANITIZE", "").strip()
SANITIZE_FLAGS = (
    [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g", "-O1"] if SANITIZE else []
)
C_DIRS = ["csrc/common", "csrc/flow_lm", "csrc/mimi"]
C_SOURCES = sorted(glob.glob("csrc/*/*.c"))

native = Extension(
    "pocket_tts._native",
    ["pocket_tts/_native.pyx", *C_SOURCES],
    include_dirs=[np.get_include(), *C_DIRS],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_22_API_VERSION")],
    # -fopenmp-simd: honours the `omp simd` loop hints only (no OpenMP runtime).
    extra_compile_args=[
        "-O3",
        "-fno-math-errno",
        "-fopenmp-simd",
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        # Cython's generated module compares Py_ssize_t with size_t; the kernels are held to
        # -Wsign-compare by tools/check_c.sh.
        "-Wno-sign-compare",
        *SANITIZE_FLAGS,
    ],
    extra_link_args=SANITIZE_FLAGS[:1],
    depends=sorted(glob.glob("csrc/*/*.h") + glob.glob("pocket_tts/_native_*.pxi")),
)

extensions = cythonize(
    [native],
    include_path=C_DIRS,
    compiler_directives=dict(
        language_level=3,
        boundscheck=DEBUG,
        wraparound=False,
        cdivision=True,
        initializedcheck=DEBUG,
        nonecheck=False,
        embedsignature=True,
    ),
)
# cythonize lists numpy's headers by absolute path, which setuptools would warn about once each
# when it writes the sdist manifest: they are not ours to ship.
for ext in extensions:
    ext.depends = [d for d in ext.depends if not os.path.isabs(d)]

setup(ext_modules=extensions)
