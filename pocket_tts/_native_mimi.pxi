# Driver of the Mimi codec (csrc/mimi: mimi.c, mimi_transformer.c, seanet.c, conv.c).
#
# MimiKernel binds packed, read-only weights into the C structs once; each stream owns a
# MimiDecoderState whose memory (conv histories, KV windows, per-frame scratch) is allocated
# once and reused for every frame. All kernels run with the GIL released.
#
# The module-level ``*_stream`` functions expose single kernels for the numpy-twin tests.
# Packed weight layouts (made by pocket_tts.mimi): see csrc/mimi/conv.h.

from gemm cimport PtMatrix, PT_F32, PT_F16, PT_PANEL, pt_packed_size, pt_gemm_set_threads
from pack cimport pt_pack_weights
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from transformer cimport PtTransformerShape, PtLayerWeights
from mimi_transformer cimport *
from conv cimport *
from seanet cimport *
from mimi cimport *


cdef const float *_fptr(list keep, object a, str what) except NULL:
    cdef cnp.ndarray arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.size == 0:
        raise ValueError(f"{what}: empty array")
    keep.append(arr)
    return <const float *>cnp.PyArray_DATA(arr)


#: Codec matrix storage -> (gemm.h dtype code, numpy element type of the panels).
_CODEC_STORAGE = {"float32": (PT_F32, np.float32), "float16": (PT_F16, np.uint16)}


cdef int _set_matrix(PtMatrix *m, list keep, object w, str storage="float32",
                     int out=-1, int n_in=-1) except -1:
    """Bind a weight for y = x w^T stored as ``storage`` (float32 or float16): either w[out, in]
    float32, packed here into panels, or panels ``[ceil(out/16), in, 16]`` already packed at
    load time in that storage (float16 as uint16 bits) with ``out`` rows. ``out`` / ``n_in``,
    when given, are checked against the weight."""
    cdef cnp.ndarray a, packed
    m.scale = NULL
    if storage not in _CODEC_STORAGE:
        raise ValueError(f"codec matrices are stored as float32 or float16, not {storage!r}")
    m.dtype, np_dtype = _CODEC_STORAGE[storage]
    if w.ndim not in (2, 3) or (n_in > 0 and w.shape[1] != n_in) or (
            w.ndim == 2 and out > 0 and w.shape[0] != out):
        raise ValueError(f"weight of shape {w.shape} is not [{out}, {n_in}]")
    if w.ndim == 3:
        if w.shape[2] != PT_PANEL or out <= 0 or w.shape[0] * PT_PANEL < out:
            raise ValueError(f"packed weight {w.shape} does not hold {out} rows of panels")
        if w.dtype != np_dtype:
            raise ValueError(f"packed weight of {w.dtype} is not {storage} panels")
        packed = np.ascontiguousarray(w)
        m.out = out
        m.n_in = w.shape[1]
        keep.append(packed)
        m.data = cnp.PyArray_DATA(packed)
        return 0
    m.out = w.shape[0]
    m.n_in = w.shape[1]
    a = np.ascontiguousarray(w, dtype=np.float32)
    packed = np.empty(pt_packed_size(m.out, m.n_in), np_dtype)
    pt_pack_weights(cnp.PyArray_DATA(packed), NULL, <const float *>cnp.PyArray_DATA(a), m.out,
                    m.n_in, m.dtype)
    keep.append(packed)
    m.data = cnp.PyArray_DATA(packed)
    return 0


cdef int _set_stored_matrix(PtMatrix *m, list keep, object stored, int out, int n_in) except -1:
    """:func:`_set_matrix` for a StoredMatrix (panels in its storage, or float32 [out, in])."""
    try:
        return _set_matrix(m, keep, stored.data, stored.storage, out, n_in)
    except ValueError as exc:
        raise ValueError(f"{stored.key}: {exc}") from None


cdef float *_buf(cnp.ndarray a):
    return <float *>cnp.PyArray_DATA(a)


cdef int _set_conv(PtConv1d *c, dict d, list keep, bint consume=False) except -1:
    """Fill a PtConv1d from a spec dict (w packed [c_out, kernel * c_in], b or None, sizes)."""
    c.c_in = d["c_in"]
    c.c_out = d["c_out"]
    c.kernel = d["kernel"]
    c.stride = d["stride"]
    c.dilation = d["dilation"]
    c.replicate = 1 if d["replicate"] else 0
    if c.stride < 1 or c.dilation < 1 or c.kernel < 1:
        raise ValueError("conv: kernel, stride and dilation must be >= 1")
    if pt_conv1d_history(c) < 0:
        raise ValueError("conv: effective kernel smaller than the stride")
    if d["w"].shape != (c.c_out, c.kernel * c.c_in):
        raise ValueError(f"conv: packed weight {d['w'].shape} != {(c.c_out, c.kernel * c.c_in)}")
    if d["w"].size == 0:
        raise ValueError("conv weight: empty array")
    _set_matrix(&c.w, keep, d["w"], d.get("storage", "float32"), c.c_out, c.kernel * c.c_in)
    c.b = <const float *>NULL if d["b"] is None else _fptr(keep, d["b"], "conv bias")
    if consume:  # the model's own spec: drop the unpacked weight now (peak memory at load)
        d["w"] = None
    return 0


cdef int _set_convtr(PtConvTr1d *c, dict d, list keep, bint consume=False) except -1:
    """Fill a PtConvTr1d from a spec dict (w packed [taps, c_in, stride * c_out])."""
    c.c_in = d["c_in"]
    c.c_out = d["c_out"]
    c.kernel = d["kernel"]
    c.stride = d["stride"]
    c.taps = (c.kernel + c.stride - 1) // c.stride
    if d["w"].shape != (c.taps, c.c_in, c.stride * c.c_out):
        raise ValueError("convtr: packed weight has the wrong shape")
    if d["w"].size == 0:
        raise ValueError("convtr weight: empty array")
    cdef int N = c.stride * c.c_out
    # Taps stacked oldest input first (row block i = tap taps-1-i), see csrc/conv.h; packed as
    # the [N, taps * c_in] matrix of y = x . stack.
    stack = np.asarray(d["w"], dtype=np.float32)[::-1].reshape(c.taps * c.c_in, N)
    _set_matrix(&c.w, keep, stack.T, d.get("storage", "float32"), N, c.taps * c.c_in)
    c.bn = <const float *>NULL if d["b"] is None else _fptr(
        keep, np.tile(np.asarray(d["b"], dtype=np.float32), c.stride), "convtr bias")
    c.b = <const float *>NULL if d["b"] is None else _fptr(keep, d["b"], "convtr bias")
    if consume:
        d["w"] = None
    return 0


cdef int _set_res(PtResBlock *r, tuple pair, list keep, bint consume=False) except -1:
    _set_conv(&r.conv1, pair[0], keep, consume)
    _set_conv(&r.conv2, pair[1], keep, consume)
    if r.conv2.stride != 1 or r.conv1.stride != 1 or r.conv2.c_out != r.conv1.c_in:
        raise ValueError("residual block: bad shapes")
    return 0


cdef PtLayerWeights *_set_transformer(PtTransformerShape *s, dict t, list keep) except NULL:
    """Fill the shape and allocate the layers of a transformer spec (layer tensors by field,
    matrices as pocket_tts.checkpoint.layout.StoredMatrix)."""
    s.d_model = t["d_model"]
    s.num_heads = t["num_heads"]
    s.num_kv_heads = t["num_heads"]
    s.head_dim = t["d_model"] // t["num_heads"]
    s.ffn_dim = t["dim_feedforward"]
    s.context = t["context"]
    s.max_period = t["max_period"]
    if s.context <= 0:
        raise ValueError("Mimi transformers need a finite context window")
    cdef int n = len(t["layers"])
    cdef PtLayerWeights *lw = <PtLayerWeights *>malloc(max(n, 1) * sizeof(PtLayerWeights))
    if lw == NULL:
        raise MemoryError()
    memset(lw, 0, max(n, 1) * sizeof(PtLayerWeights))
    try:
        for i, L in enumerate(t["layers"]):
            lw[i].norm1_w = _fptr(keep, L["norm1_w"], "norm1")
            lw[i].norm1_b = _fptr(keep, L["norm1_b"], "norm1")
            _set_stored_matrix(&lw[i].in_proj, keep, L.pop("in_proj"), 3 * s.d_model, s.d_model)
            _set_stored_matrix(&lw[i].out_proj, keep, L.pop("out_proj"), s.d_model, s.d_model)
            lw[i].norm2_w = _fptr(keep, L["norm2_w"], "norm2")
            lw[i].norm2_b = _fptr(keep, L["norm2_b"], "norm2")
            _set_stored_matrix(&lw[i].linear1, keep, L.pop("linear1"), s.ffn_dim, s.d_model)
            _set_stored_matrix(&lw[i].linear2, keep, L.pop("linear2"), s.d_model, s.ffn_dim)
            if "scale1" in L:
                lw[i].scale1 = _fptr(keep, L["scale1"], "layer_scale_1")
                lw[i].scale2 = _fptr(keep, L["scale2"], "layer_scale_2")
    except BaseException:
        free(lw)
        raise
    return lw


cdef class MimiDecoderState:
    """Per-stream decoder state: conv histories and KV windows of the ``context`` last positions,
    allocated once here and never reallocated, and (unless made without one) its own per-frame
    scratch; a state without one is decoded with a scratch of the caller's."""

    cdef PtMimiDecoderState st
    cdef PtWindowKV *caches
    cdef readonly object state_arr     # float32 arena: histories + KV windows
    cdef readonly object scratch_arr   # float32 arena: one frame of work buffers
    cdef MimiKernel kernel
    cdef public int max_frames_per_call   # 0 = unlimited

    def __cinit__(self):
        self.caches = NULL

    def __dealloc__(self):
        if self.caches != NULL:
            free(self.caches)

    @property
    def frames(self):
        """Frames decoded since creation or the last :meth:`reset`."""
        return int(self.st.frames)

    @property
    def offsets(self):
        """Decoder-transformer KV offsets (positions seen), one per layer."""
        return [int(self.caches[l].offset) for l in range(self.kernel.dec.num_layers)]

    @property
    def nbytes(self):
        """Bytes held by the state arena and its own scratch, if any."""
        return self.state_arr.nbytes + (0 if self.scratch_arr is None else self.scratch_arr.nbytes)

    def buffer_addresses(self):
        """Data addresses of the arenas (tests check they never move)."""
        return (self.state_arr.ctypes.data,
                None if self.scratch_arr is None else self.scratch_arr.ctypes.data)

    def reset(self):
        """Back to the start of a stream without reallocating anything."""
        pt_mimi_decoder_reset(&self.kernel.dec, &self.st)


cdef class MimiKernel:
    """Read-only Mimi weights laid out for the C kernels (decoder and encoder)."""

    cdef PtMimiDecoder dec
    cdef PtMimiEncoder enc
    cdef PtLayerWeights *dec_layers
    cdef PtLayerWeights *enc_layers
    cdef list keep
    cdef readonly int frame_size, ldim, inner, enc_context

    def __cinit__(self):
        self.dec_layers = NULL
        self.enc_layers = NULL

    def __dealloc__(self):
        if self.dec_layers != NULL:
            free(self.dec_layers)
        if self.enc_layers != NULL:
            free(self.enc_layers)

    def __init__(self, dict dec, dict enc):
        """Bind the decoder / encoder specs built by :func:`pocket_tts.mimi._specs`."""
        self.keep = []
        memset(&self.dec, 0, sizeof(PtMimiDecoder))
        memset(&self.enc, 0, sizeof(PtMimiEncoder))
        # Decoder.
        self.dec.ldim = dec["ldim"]
        self.dec.outer = dec["outer"]
        self.dec.stride = dec["stride"]
        self.dec.up_kernel = dec["up_kernel"]
        self.dec.frame_size = dec["frame_size"]
        _set_matrix(&self.dec.quant, self.keep, dec["quant_w"])
        self.dec.up_w = _fptr(self.keep, dec["up_w"], "upsample")
        self.dec_layers = _set_transformer(&self.dec.tshape, dec["transformer"], self.keep)
        self.dec.num_layers = len(dec["transformer"]["layers"])
        self.dec.layers = self.dec_layers
        if self.dec.tshape.d_model != self.dec.outer:
            raise ValueError("decoder transformer width must equal the upsample channels")
        sd = dec["seanet"]
        if len(sd["stages"]) > PT_SEANET_MAX_STAGES:
            raise ValueError("too many SEANet stages")
        self.dec.seanet.n_stages = len(sd["stages"])
        self.dec.seanet.n_res = len(sd["stages"][0]["res"]) if sd["stages"] else 0
        if self.dec.seanet.n_res > PT_SEANET_MAX_RES:
            raise ValueError("too many residual layers")
        _set_conv(&self.dec.seanet.first, sd["first"], self.keep, True)
        for i, stage in enumerate(sd["stages"]):
            _set_convtr(&self.dec.seanet.up[i], stage["up"], self.keep, True)
            for j, pair in enumerate(stage["res"]):
                _set_res(&self.dec.seanet.res[i][j], pair, self.keep, True)
        _set_conv(&self.dec.seanet.last, sd["last"], self.keep, True)
        # Encoder.
        self.enc.dim = enc["dim"]
        self.enc.inner = enc["inner"]
        self.enc.stride = enc["stride"]
        self.enc.frame_size = enc["frame_size"]
        self.enc_layers = _set_transformer(&self.enc.tshape, enc["transformer"], self.keep)
        self.enc.num_layers = len(enc["transformer"]["layers"])
        self.enc.layers = self.enc_layers
        se = enc["seanet"]
        if len(se["stages"]) > PT_SEANET_MAX_STAGES:
            raise ValueError("too many SEANet stages")
        self.enc.seanet.n_stages = len(se["stages"])
        self.enc.seanet.n_res = len(se["stages"][0]["res"]) if se["stages"] else 0
        if self.enc.seanet.n_res > PT_SEANET_MAX_RES:
            raise ValueError("too many residual layers")
        _set_conv(&self.enc.seanet.first, se["first"], self.keep, True)
        for i, stage in enumerate(se["stages"]):
            for j, pair in enumerate(stage["res"]):
                _set_res(&self.enc.seanet.res[i][j], pair, self.keep, True)
            _set_conv(&self.enc.seanet.down[i], stage["down"], self.keep, True)
        _set_conv(&self.enc.seanet.last, se["last"], self.keep, True)
        _set_conv(&self.enc.down, enc["down"], self.keep, True)
        self.frame_size = self.dec.frame_size
        self.ldim = self.dec.ldim
        self.inner = self.enc.inner
        self.enc_context = self.enc.tshape.context

    def decoder_scratch(self):
        """A per-frame decoder scratch that :meth:`decode` can lend to states made without
        their own (one per decoding thread)."""
        return np.zeros(pt_mimi_decoder_scratch_size(&self.dec) + 16, np.float32)

    def new_decoder_state(self, bint own_scratch=True):
        """A fresh decoder stream state (all memory allocated here, once); with
        ``own_scratch=False`` it has no per-frame scratch and :meth:`decode` must be given one
        (:meth:`decoder_scratch`)."""
        cdef MimiDecoderState s = MimiDecoderState()
        s.kernel = self
        s.state_arr = np.zeros(pt_mimi_decoder_state_size(&self.dec) + 16, np.float32)
        s.scratch_arr = self.decoder_scratch() if own_scratch else None
        s.caches = <PtWindowKV *>malloc(max(self.dec.num_layers, 1) * sizeof(PtWindowKV))
        if s.caches == NULL:
            raise MemoryError()
        # Without a scratch of its own the work pointers stay NULL until decode lends one.
        pt_mimi_decoder_state_bind(&self.dec, &s.st, _buf(s.state_arr), s.caches,
                                   NULL if s.scratch_arr is None else _buf(s.scratch_arr))
        return s

    def decode(self, MimiDecoderState state, const float[:, ::1] latents, float[::1] out,
               int threads=1, scratch=None):
        """latents[n, ldim] (de-normalised) -> out[n * frame_size]; advances the stream.
        Large products are split over ``threads`` (<= 2) threads, or with :data:`SHARED`
        offered in chunks to a thread in :func:`help_until` (bit-identical output).
        ``scratch`` (from :meth:`decoder_scratch`, used by one call at a time) stands in for
        the state's own, which a state made with ``own_scratch=False`` lacks."""
        if state.kernel is not self:
            raise ValueError("decoder state belongs to another model")
        cdef cnp.ndarray work = state.scratch_arr if scratch is None else scratch
        if work is None:
            raise ValueError("this decoder state has no scratch of its own: pass scratch=")
        if (work.dtype != np.float32 or not work.flags.c_contiguous or not work.flags.writeable
                or work.shape[0] < pt_mimi_decoder_scratch_size(&self.dec) + 16):
            raise ValueError("scratch must be a writable float32 array from decoder_scratch()")
        cdef int n = latents.shape[0]
        if latents.shape[1] != self.dec.ldim:
            raise ValueError(f"latents must be [n, {self.dec.ldim}], got "
                             f"[{latents.shape[0]}, {latents.shape[1]}]")
        if out.shape[0] != <Py_ssize_t>n * self.dec.frame_size:
            raise ValueError(f"out must hold {n * self.dec.frame_size} samples, "
                             f"got {out.shape[0]}")
        if n == 0:
            return
        cdef int rc
        pt_mimi_decoder_use_scratch(&self.dec, &state.st, _buf(work))
        with nogil:
            pt_gemm_set_threads(threads)
            rc = pt_mimi_decode(&self.dec, &state.st, &latents[0, 0], n, &out[0])
            pt_gemm_set_threads(1)
        if rc != 0:
            raise RuntimeError("Mimi decoder KV-cache error")

    def encode(self, const float[::1] audio, int chunk_frames=8, int threads=2, cancel=None):
        """audio[n * frame_size] (already right-padded) -> latents[n, inner]. Large products
        are split over ``threads`` (<= 2) threads: encoding runs while nothing else does.
        ``cancel`` (an int32 array [1], set to nonzero by another thread) stops it before the
        next chunk of ``chunk_frames`` frames: returns None then."""
        cdef const volatile int *flag = NULL
        if cancel is not None:
            if (not isinstance(cancel, np.ndarray) or cancel.dtype != np.int32
                    or cancel.shape != (1,)):
                raise ValueError("cancel must be an int32 array of shape (1,)")
            flag = <const volatile int *>cnp.PyArray_DATA(<cnp.ndarray>cancel)
        cdef Py_ssize_t L = audio.shape[0]
        if L == 0 or L % self.enc.frame_size:
            raise ValueError(f"audio length {L} is not a positive multiple of "
                             f"{self.enc.frame_size}")
        if chunk_frames < 1:
            raise ValueError("chunk_frames must be >= 1")
        cdef int n = <int>(L // self.enc.frame_size)
        if chunk_frames > n:
            chunk_frames = n
        state = np.zeros(pt_mimi_encoder_state_size(&self.enc, chunk_frames) + 16, np.float32)
        scratch = np.zeros(pt_mimi_encoder_scratch_size(&self.enc, chunk_frames) + 16,
                           np.float32)
        cdef cnp.ndarray out = np.empty((n, self.enc.inner), np.float32)
        cdef PtWindowKV *caches = <PtWindowKV *>malloc(max(self.enc.num_layers, 1) *
                                                    sizeof(PtWindowKV))
        if caches == NULL:
            raise MemoryError()
        cdef float *sp = _buf(state)
        cdef float *cp = _buf(scratch)
        cdef float *op = _buf(out)
        cdef int rc
        try:
            with nogil:
                pt_gemm_set_threads(threads)
                rc = pt_mimi_encode(&self.enc, &audio[0], n, chunk_frames, op, sp, caches, cp,
                                    threads, flag)
                pt_gemm_set_threads(1)
        finally:
            free(caches)
        if rc == -2:
            return None
        if rc != 0:
            raise RuntimeError("Mimi encoder KV-cache error")
        return out


# ---------------------------------------------------------------------------------------------
# Single kernels, for the numpy-twin tests (each call makes its own fresh state).
# ---------------------------------------------------------------------------------------------

def conv1d_stream(dict spec, list chunks):
    """Run a streaming Conv1d (spec as for MimiKernel) over time-major chunks [T_i, c_in];
    return the list of outputs [T_i / stride, c_out]."""
    cdef list keep = []
    cdef PtConv1d c
    _set_conv(&c, spec, keep)
    cdef int P = pt_conv1d_history(&c)
    cdef cnp.ndarray hist = np.zeros(max(P, 1) * c.c_in, np.float32)
    cdef PtConv1dState s
    s.hist = _buf(hist)
    pt_conv1d_reset(&c, &s)
    outs = []
    cdef cnp.ndarray xp, y, col
    cdef int T
    cdef float *p1
    cdef float *p2
    cdef float *p3
    for x in chunks:
        x = np.ascontiguousarray(x, dtype=np.float32)
        T = x.shape[0]
        if x.shape[1] != c.c_in or T % c.stride:
            raise ValueError("bad chunk shape")
        xp = np.zeros((P + T, c.c_in), np.float32)
        xp[P:] = x
        y = np.zeros((T // c.stride, c.c_out), np.float32)
        col = np.zeros(max(pt_conv1d_col_size(&c, T), <size_t>1), np.float32)
        p1, p2, p3 = _buf(xp), _buf(y), _buf(col)
        with nogil:
            pt_conv1d_forward(&c, &s, p1, T, p2, p3, 0)
        outs.append(y)
    return outs


def convtr1d_stream(dict spec, list chunks):
    """Streaming ConvTranspose1d over chunks [T_i, c_in] -> outputs [T_i * stride, c_out]."""
    cdef list keep = []
    cdef PtConvTr1d c
    _set_convtr(&c, spec, keep)
    cdef int H = pt_convtr1d_history(&c)
    cdef cnp.ndarray hist = np.zeros(max(H, 1) * c.c_in, np.float32)
    outs = []
    cdef cnp.ndarray xp, y
    cdef int T
    cdef float *p1
    cdef float *p2
    cdef float *p3
    for x in chunks:
        x = np.ascontiguousarray(x, dtype=np.float32)
        T = x.shape[0]
        if x.shape[1] != c.c_in:
            raise ValueError("bad chunk shape")
        xp = np.zeros((H + T, c.c_in), np.float32)
        xp[H:] = x
        y = np.zeros((T * c.stride, c.c_out), np.float32)
        p1, p2, p3 = _buf(hist), _buf(xp), _buf(y)
        with nogil:
            pt_convtr1d_forward(&c, p1, p2, T, p3)
        outs.append(y)
    return outs


def depthwise_stream(w_packed, bias, int kernel, int stride, list chunks):
    """Streaming depthwise ConvTranspose1d (w packed [taps*stride, C]) over chunks [T_i, C]."""
    cdef cnp.ndarray w = np.ascontiguousarray(w_packed, dtype=np.float32)
    cdef int C = w.shape[1]
    cdef int taps = (kernel + stride - 1) // stride
    if w.shape[0] != taps * stride:
        raise ValueError("bad packed depthwise weight")
    cdef cnp.ndarray b
    cdef const float *bp = NULL
    if bias is not None:
        b = np.ascontiguousarray(bias, dtype=np.float32)
        bp = <const float *>cnp.PyArray_DATA(b)
    cdef cnp.ndarray hist = np.zeros(max(taps - 1, 1) * C, np.float32)
    outs = []
    cdef cnp.ndarray xp, y
    cdef int T
    cdef float *p0
    cdef float *p1
    cdef float *p2
    cdef float *p3
    for x in chunks:
        x = np.ascontiguousarray(x, dtype=np.float32)
        T = x.shape[0]
        xp = np.zeros((taps - 1 + T, C), np.float32)
        xp[taps - 1:] = x
        y = np.zeros((T * stride, C), np.float32)
        p0, p1, p2, p3 = _buf(w), _buf(hist), _buf(xp), _buf(y)
        with nogil:
            pt_convtr1d_depthwise(p0, bp, C, kernel, stride, p1, p2, T, p3)
        outs.append(y)
    return outs


def window_attention_stream(int context, list chunks, int threads=1):
    """Streaming context-window attention over chunks of (q [T, H, D], k [T, Hkv, D], v) with
    one fresh window cache sized for the largest chunk -> outputs [T_i, H * D]."""
    cdef int H = chunks[0][0].shape[1], Hkv = chunks[0][1].shape[1], D = chunks[0][0].shape[2]
    cdef int max_T = max(c[0].shape[0] for c in chunks)
    cdef PtTransformerShape shape
    memset(&shape, 0, sizeof(shape))
    shape.num_heads = H
    shape.num_kv_heads = Hkv
    shape.head_dim = D
    shape.context = context
    cdef cnp.ndarray mem = np.zeros(pt_window_kv_floats(&shape, max_T), np.float32)
    cdef PtWindowKV kv
    pt_window_kv_bind(&kv, &shape, max_T, _buf(mem))
    cdef cnp.ndarray scores = np.zeros(2 * pt_window_scores_floats(context), np.float32)
    cdef cnp.ndarray q, k, v, out
    cdef int T, rc
    cdef float *p[6]
    outs = []
    for cq, ck, cv in chunks:
        q = np.ascontiguousarray(cq, dtype=np.float32)
        k = np.ascontiguousarray(ck, dtype=np.float32)
        v = np.ascontiguousarray(cv, dtype=np.float32)
        T = q.shape[0]
        out = np.zeros((T, H * D), np.float32)
        p[0], p[1], p[2], p[3], p[4] = _buf(q), _buf(k), _buf(v), _buf(out), _buf(scores)
        with nogil:
            rc = pt_window_attention(&kv, p[0], p[1], p[2], T, H, Hkv, D, H * D, Hkv * D,
                                     p[3], p[4], threads)
        if rc != 0:
            raise RuntimeError("window attention: chunk larger than the cache")
        outs.append(out)
    return outs


def resblock_stream(dict conv1, dict conv2, list chunks):
    """Streaming SEANet residual block over chunks [T_i, dim] -> outputs [T_i, dim]."""
    cdef list keep = []
    cdef PtResBlock r
    _set_res(&r, (conv1, conv2), keep)
    cdef int P1 = pt_conv1d_history(&r.conv1), P2 = pt_conv1d_history(&r.conv2)
    cdef int dim = r.conv1.c_in, hid = r.conv1.c_out
    cdef cnp.ndarray h1 = np.zeros(max(P1, 1) * dim, np.float32)
    cdef cnp.ndarray h2 = np.zeros(max(P2, 1) * hid, np.float32)
    cdef PtConv1dState s1, s2
    s1.hist = _buf(h1)
    s2.hist = _buf(h2)
    pt_conv1d_reset(&r.conv1, &s1)
    pt_conv1d_reset(&r.conv2, &s2)
    outs = []
    cdef cnp.ndarray x, xp, h, col
    cdef int T
    cdef float *p0
    cdef float *p1
    cdef float *p2
    cdef float *p3
    for chunk in chunks:
        x = np.array(chunk, dtype=np.float32, order="C", copy=True)
        T = x.shape[0]
        xp = np.zeros((P1 + T) * dim, np.float32)
        h = np.zeros((P2 + T) * hid, np.float32)
        col = np.zeros(max(pt_conv1d_col_size(&r.conv1, T), pt_conv1d_col_size(&r.conv2, T),
                           <size_t>1), np.float32)
        p0, p1, p2, p3 = _buf(x), _buf(xp), _buf(h), _buf(col)
        with nogil:
            pt_seanet_resblock(&r, &s1, &s2, p0, T, p1, p2, p3)
        outs.append(x)
    return outs
