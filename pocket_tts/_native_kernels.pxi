# Shared kernels of csrc/common: the CPU dispatch switch, the shared-product thread modes, the
# gemm.h storage tables, and direct entry points to single kernels. The tests check each kernel
# against a float64 numpy twin through these; the package itself uses pack_nt / gemm_packed
# (the speaker projection of a voice prompt).

from libc.stdint cimport int64_t
from libc.string cimport memset

from cpu cimport pt_cpu_isa, pt_cpu_has_avx2, pt_cpu_cap_isa, pt_cpu_force_generic
from elementwise cimport pt_layer_norm, pt_rms_norm_unbiased, pt_gelu_tanh, pt_silu, pt_elu
from attention cimport (PtKVCache, pt_attention_scratch_size, pt_rope_freq, pt_rope,
                        pt_attention)
from gemm cimport PtMatrix, PT_F32, PT_F16, PT_BF16, PT_I8, PT_PANEL, pt_gemm
from gemm cimport pt_packed_size, pt_pack_nt, pt_gemm_packed
from gemm cimport pt_gemm_set_threads, pt_gemm_help_until, pt_progress_store, PT_GEMM_SHARED

#: Storage dtype name -> gemm.h element code, and the numpy type of its panels.
_STORAGE = {"float32": PT_F32, "float16": PT_F16, "bfloat16": PT_BF16, "int8": PT_I8}
_STORAGE_NP = {"float32": np.float32, "float16": np.uint16, "bfloat16": np.uint16,
               "int8": np.int8}


def has_avx2():
    """True when the AVX2/FMA/F16C kernels are selected at run time."""
    return bool(pt_cpu_has_avx2())


def force_generic(bint force):
    """Force the portable kernels (tests run both paths); False restores detection."""
    pt_cpu_force_generic(force)


#: Instruction-set level names, lowest first (cpu.h).
ISA_LEVELS = ("generic", "avx2", "avx512")


def isa():
    """The instruction set the kernels use: ``"generic"``, ``"avx2"`` or ``"avx512"``."""
    return ISA_LEVELS[pt_cpu_isa()]


def cap_isa(str level):
    """Use at most ``level`` (a name of :data:`ISA_LEVELS`) from now on; ``"avx512"``
    restores detection. The AVX-512 kernels give the AVX2 kernels' bits; tests compare them."""
    if level not in ISA_LEVELS:
        raise ValueError(f"unknown instruction set {level!r}; expected one of {ISA_LEVELS}")
    pt_cpu_cap_isa(ISA_LEVELS.index(level))


#: ``threads=SHARED`` (FlowLMKernel.step / prefill, MimiKernel.decode): offer every product
#: in chunks to a thread waiting in :func:`help_until`.
SHARED = PT_GEMM_SHARED


def help_until(int[::1] progress, int target):
    """Spin on this core, computing chunks of the products other threads post with
    ``threads=SHARED``, until ``progress[0] >= target`` (set with :func:`progress_store`).
    Only for a core that would otherwise idle: the decoder thread waiting for its next latent,
    the flow-LM thread while the first frame is decoded."""
    with nogil:
        pt_gemm_help_until(&progress[0], target)


def progress_store(int[::1] progress, int value):
    """``progress[0] = value`` with release ordering: what :func:`help_until` waits for."""
    with nogil:
        pt_progress_store(&progress[0], value)


def layer_norm(const float[:, ::1] x, object w=None, object b=None, float eps=1e-5):
    """Row LayerNorm with biased variance; w/b optional."""
    cdef int T = x.shape[0], C = x.shape[1]
    cdef float[:, ::1] y = np.empty((T, C), np.float32)
    cdef const float[::1] wv, bv
    cdef const float *wp = NULL
    cdef const float *bp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    if b is not None:
        bv = b
        bp = &bv[0]
    with nogil:
        pt_layer_norm(&y[0, 0], &x[0, 0], wp, bp, T, C, eps)
    return np.asarray(y)


def rms_norm_unbiased(const float[:, ::1] x, const float[::1] alpha, float eps=1e-5):
    """x * alpha / sqrt(eps + unbiased var(x))."""
    cdef int T = x.shape[0], C = x.shape[1]
    cdef float[:, ::1] y = np.empty((T, C), np.float32)
    with nogil:
        pt_rms_norm_unbiased(&y[0, 0], &x[0, 0], &alpha[0], T, C, eps)
    return np.asarray(y)


def gelu_tanh(x):
    """GELU, tanh approximation."""
    cdef float[::1] y = np.array(x, dtype=np.float32).reshape(-1)
    with nogil:
        pt_gelu_tanh(&y[0], y.shape[0])
    return np.asarray(y).reshape(np.shape(x))


def silu(x):
    """x * sigmoid(x)."""
    cdef float[::1] y = np.array(x, dtype=np.float32).reshape(-1)
    with nogil:
        pt_silu(&y[0], &y[0], y.shape[0])
    return np.asarray(y).reshape(np.shape(x))


def elu(x):
    """ELU with alpha = 1."""
    cdef float[::1] y = np.array(x, dtype=np.float32).reshape(-1)
    with nogil:
        pt_elu(&y[0], &y[0], y.shape[0])
    return np.asarray(y).reshape(np.shape(x))


def rope(x, int64_t pos0, float max_period=10000.0):
    """RoPE (interleaved pairs) on x[T, H, D] at positions pos0 + t; returns a new array."""
    cdef float[:, :, ::1] y = np.array(x, dtype=np.float32)
    with nogil:
        pt_rope(&y[0, 0, 0], y.shape[0], y.shape[1], y.shape[2], pos0, max_period)
    return np.asarray(y)


def rope_freqs(int D, float max_period=10000.0):
    """The float32 RoPE frequencies of a D-wide head, as the kernels use them."""
    out = np.empty(D // 2, np.float32)
    cdef int i
    for i in range(D // 2):
        out[i] = pt_rope_freq(i, D, max_period)
    return out


def attention(const float[:, :, ::1] q, const float[:, :, ::1] k, const float[:, :, ::1] v,
              float[:, :, ::1] cache_k, float[:, :, ::1] cache_v, int64_t offset,
              int threads=1, prefix_k=None, prefix_v=None):
    """Causal attention of q[T,H,D] after appending k/v[T,H_kv,D] to a cache ([cap,H_kv,D]
    each) holding `offset` positions. ``threads`` (<= 2) lets a large call split its heads.
    With ``prefix_k`` / ``prefix_v`` ([P,H_kv,D] each) the cache's first P slots are those
    (read-only) and ``cache_k`` / ``cache_v`` hold slots P and on. Returns (out[T, H*D],
    new_offset)."""
    cdef PtKVCache c
    cdef int T = q.shape[0], H = q.shape[1], D = q.shape[2], Hkv = k.shape[1]
    cdef const float[:, :, ::1] pk
    cdef const float[:, :, ::1] pv
    memset(&c, 0, sizeof(PtKVCache))
    if (prefix_k is None) != (prefix_v is None):
        raise ValueError("give both prefix_k and prefix_v, or neither")
    if prefix_k is not None:
        pk = prefix_k
        pv = prefix_v
        if pk.shape[0] != pv.shape[0] or pk.shape[0] == 0:
            raise ValueError("prefix_k and prefix_v must hold the same positive number of slots")
        c.prefix_k = &pk[0, 0, 0]
        c.prefix_v = &pv[0, 0, 0]
        c.prefix = pk.shape[0]
    c.k = &cache_k[0, 0, 0]
    c.v = &cache_v[0, 0, 0]
    c.capacity = c.prefix + cache_k.shape[0]
    c.offset = offset
    cdef float[:, ::1] out = np.empty((T, H * D), np.float32)
    cdef float[::1] scores = np.empty(pt_attention_scratch_size(c.capacity, H), np.float32)
    cdef int rc
    with nogil:
        pt_gemm_set_threads(threads)
        rc = pt_attention(&out[0, 0], &q[0, 0, 0], &k[0, 0, 0], &v[0, 0, 0], &c, T, H, Hkv, D,
                          H * D, Hkv * D, &scores[0])
        pt_gemm_set_threads(1)
    if rc != 0:
        raise ValueError("KV cache overflow")
    return np.asarray(out), c.offset


def gemm(const float[:, ::1] x, packed, str dtype, int out, scale=None, int threads=1):
    """y[T, out] = x[T, in] . W^T with W in 16-column panels ``[ceil(out/16), in, 16]`` of
    float32 / float16 / bfloat16 (uint16 bits) / int8 (with per-column ``scale``)."""
    cdef cnp.ndarray pa = np.ascontiguousarray(packed)
    cdef cnp.ndarray sa
    cdef PtMatrix m
    if pa.ndim != 3 or pa.shape[2] != PT_PANEL or pa.shape[0] * PT_PANEL < out:
        raise ValueError("packed must be [ceil(out/16), in, 16]")
    m.data = cnp.PyArray_DATA(pa)
    m.dtype = _STORAGE[dtype]
    m.out = out
    m.n_in = pa.shape[1]
    m.scale = NULL
    if dtype == "int8":
        sa = np.ascontiguousarray(scale, dtype=np.float32)
        m.scale = <const float *>cnp.PyArray_DATA(sa)
    if x.shape[1] != m.n_in:
        raise ValueError("shape mismatch")
    cdef int T = x.shape[0]
    cdef float[:, ::1] y = np.empty((T, out), np.float32)
    with nogil:
        pt_gemm_set_threads(threads)
        pt_gemm(&y[0, 0], out, &x[0, 0], m.n_in, &m, T, NULL, 0)
        pt_gemm_set_threads(1)
    return np.asarray(y)


def pack_nt(const float[:, ::1] w):
    """Pack w[n, k] (torch Linear layout) into 16-column panels for :func:`gemm_packed`."""
    cdef int n = w.shape[0], k = w.shape[1]
    cdef float[::1] out = np.empty(pt_packed_size(n, k), np.float32)
    with nogil:
        pt_pack_nt(&out[0], &w[0, 0], n, k)
    return np.asarray(out)


def gemm_packed(const float[:, ::1] x, const float[::1] packed, int n, object bias=None):
    """y[M, n] = x[M, k] . W^T (+ bias) with W packed by :func:`pack_nt`."""
    cdef int M = x.shape[0], k = x.shape[1]
    if <size_t>packed.shape[0] != pt_packed_size(n, k):
        raise ValueError("packed size does not match n, k")
    cdef float[:, ::1] y = np.empty((M, n), np.float32)
    cdef const float[::1] b
    cdef const float *bp = NULL
    if bias is not None:
        b = bias
        bp = &b[0]
    with nogil:
        pt_gemm_packed(&y[0, 0], n, &x[0, 0], k, &packed[0], M, n, k, bp, 0)
    return np.asarray(y)
