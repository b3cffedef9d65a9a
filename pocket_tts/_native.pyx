# cython: language_level=3
"""The compiled engine: every C kernel of ``csrc/`` behind one extension module.

One CPU dispatch switch (:func:`has_avx2`, :func:`force_generic`), one shared-product slot
(:data:`SHARED`, :func:`help_until`, :func:`progress_store`) and one copy of each kernel serve
the flow LM (:class:`FlowLMKernel`), the Mimi codec (:class:`MimiKernel`) and load-time packing
(:func:`pack_weights`). All kernels run with the GIL released. Typed in ``_native.pyi``.
"""

import numpy as np
cimport numpy as cnp

cnp.import_array()

include "_native_kernels.pxi"
include "_native_pack.pxi"
include "_native_flow_lm.pxi"
include "_native_mimi.pxi"
