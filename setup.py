"""Build the C/Cython kernels.

Every ``pocket_tts/_*.pyx`` becomes one extension module, linked with the C kernels in ``csrc/``.
The kernels are compiled for the baseline ISA; AVX2/FMA/F16C variants carry
``__attribute__((target(...)))`` and are chosen at run time (csrc/cpu.c), so the build is portable.
No ``-march=native`` and no ``-ffast-math`` (it flips FTZ/DAZ process-wide and folds NaN checks).
"""

import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("POCKET_TTS_DEBUG_CYTHON", "0") != "0"
C_SOURCES = sorted(glob.glob("csrc/*.c"))
COMMON = dict(
    include_dirs=[np.get_include(), "csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_22_API_VERSION")],
    extra_compile_args=["-O3", "-fno-math-errno", "-fopenmp-simd", "-std=gnu11"],
)

extensions = [
    Extension(f"pocket_tts.{os.path.splitext(os.path.basename(p))[0]}", [p, *C_SOURCES], **COMMON)
    for p in sorted(glob.glob("pocket_tts/_*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc"],
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
)
