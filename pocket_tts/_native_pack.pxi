# Load-time weight packing (csrc/common/pack.c): float32 [out, in] -> gemm.h panels in the
# storage dtype, converted in one pass with the GIL released.

from gemm cimport PT_PANEL
from pack cimport pt_pack_weights, pt_f32_to_f16, pt_f32_to_bf16


def pack_weights(const float[:, ::1] w, object dst, object scale, str dtype):
    """Pack ``w[out, in]`` into ``dst`` (C-contiguous ``[ceil(out/16), in, 16]`` of the storage
    type: float32, uint16 bits for float16/bfloat16, int8). ``scale`` (int8 only, else None)
    receives the per-row scales, float32 ``[ceil(out/16) * 16]`` zero-padded."""
    if dtype not in _STORAGE:
        raise ValueError(f"unknown storage dtype {dtype!r}")
    cdef int out = w.shape[0], n_in = w.shape[1]
    cdef int panels = (out + PT_PANEL - 1) // PT_PANEL
    cdef object np_type = _STORAGE_NP[dtype]
    if (not isinstance(dst, np.ndarray) or dst.dtype != np_type or not dst.flags.c_contiguous
            or not dst.flags.writeable or tuple(dst.shape) != (panels, n_in, PT_PANEL)):
        raise ValueError(f"dst must be a writable C-contiguous {np_type.__name__} array of "
                         f"shape {(panels, n_in, PT_PANEL)}")
    cdef float[::1] sc
    cdef float *sp = NULL
    if dtype == "int8":
        sc = scale
        if sc.shape[0] != panels * PT_PANEL:
            raise ValueError(f"scale must have {panels * PT_PANEL} entries")
        sp = &sc[0]
    elif scale is not None:
        raise ValueError("scale is for int8 only")
    cdef void *d = cnp.PyArray_DATA(<cnp.ndarray>dst)
    cdef const float *src = &w[0, 0] if out > 0 and n_in > 0 else NULL
    cdef int code = _STORAGE[dtype]
    if src == NULL:
        return
    with nogil:
        pt_pack_weights(d, sp, src, out, n_in, code)


def to_half_bits(const float[::1] x, str dtype, out=None):
    """float32 -> float16 or bfloat16 bit patterns (uint16), as the packer converts them;
    written into ``out`` (uint16, same length) when given, else into a new array."""
    if out is None:
        out = np.empty(x.shape[0], np.uint16)
    cdef unsigned short[::1] o = out
    if o.shape[0] != x.shape[0]:
        raise ValueError("out must have the length of x")
    cdef Py_ssize_t i
    cdef bint f16 = dtype == "float16"
    if not f16 and dtype != "bfloat16":
        raise ValueError(f"unknown half dtype {dtype!r}")
    with nogil:
        for i in range(x.shape[0]):
            o[i] = pt_f32_to_f16(x[i]) if f16 else pt_f32_to_bf16(x[i])
    return out
