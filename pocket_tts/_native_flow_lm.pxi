# Driver of the flow LM (csrc/flow_lm/flow_lm.c): builds the C weight struct from the
# checkpoint arrays once, and runs prefill / one autoregressive step per call with the GIL
# released.
#
# Per-stream state (KV caches, scratch, noise generator) lives in FlowLMState, allocated once
# per text chunk; the model object stays read-only and can be shared between streams.

from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from rng cimport PtRng, pt_rng_seed, pt_rng_normal, pt_rng_trunc_normal, pt_rng_u32
from attention cimport PtKVCache
from transformer cimport PtLayerWeights
from flow_head cimport (PT_FLOW_MAX_DEPTH, PT_FLOW_LSD, PT_FLOW_MATCHING, PT_FLOW_DRIFTING,
                        PT_FLOW_POINTWISE, pt_flow_head_sample)
from flow_lm cimport *
from gemm cimport PtMatrix, PT_PANEL, PT_F32, pt_packed_size, pt_pack_nt
from gemm cimport pt_gemm_set_threads

FLOW_TYPES = {"lsd": PT_FLOW_LSD, "flow_matching": PT_FLOW_MATCHING,
              "drifting": PT_FLOW_DRIFTING, "pointwise": PT_FLOW_POINTWISE}


cdef const float *_ptr(list keep, object w, str field, tuple index=()) except NULL:
    """The data of float32 tensor ``field`` taken from ``w`` (kept alive in ``keep``)."""
    cdef cnp.ndarray a = w.take(field, *index)
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        raise ValueError(f"{w.key(field, *index)}: expected a C-contiguous float32 array")
    keep.append(a)
    return <const float *>cnp.PyArray_DATA(a)


cdef int _matrix(PtMatrix *m, list keep, object w, str field, tuple index, int out) except -1:
    """Point ``m`` at packed matrix ``field`` taken from ``w``: panels ``[ceil(out/16), in,
    16]`` in its storage (see pocket_tts.checkpoint.storage)."""
    stored = w.take_matrix(field, *index)
    cdef cnp.ndarray a = stored.data
    cdef cnp.ndarray s
    cdef str storage = stored.storage
    if (a.dtype != _STORAGE_NP[storage] or not a.flags.c_contiguous or a.ndim != 3
            or a.shape[2] != PT_PANEL or a.shape[0] != (out + PT_PANEL - 1) // PT_PANEL):
        raise ValueError(f"{stored.key}: expected {storage} panels for {out} outputs, got "
                         f"{a.dtype} {np.shape(a)}")
    keep.append(a)
    m.data = cnp.PyArray_DATA(a)
    m.dtype = _STORAGE[storage]
    m.out = out
    m.n_in = a.shape[1]
    m.scale = NULL
    if storage == "int8":
        if stored.scale is None:
            raise ValueError(f"{stored.key}: int8 panels without their scales")
        s = stored.scale
        rows = a.shape[0] * PT_PANEL
        if s.dtype != np.float32 or not s.flags.c_contiguous or s.shape[0] < rows:
            raise ValueError(f"{stored.key}: int8 scales must be float32 [{rows}]")
        keep.append(s)
        m.scale = <const float *>cnp.PyArray_DATA(s)
    return 0


cdef int _f32_matrix(PtMatrix *m, list keep, object w, str field) except -1:
    """Pack float32 matrix ``field`` [out, in] taken from ``w`` into gemm.h panels (kept alive
    in ``keep``)."""
    cdef cnp.ndarray a = np.ascontiguousarray(w.take(field), dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{w.key(field)}: expected a matrix")
    cdef cnp.ndarray out = np.empty(pt_packed_size(a.shape[0], a.shape[1]), np.float32)
    pt_pack_nt(<float *>cnp.PyArray_DATA(out), <const float *>cnp.PyArray_DATA(a),
               a.shape[0], a.shape[1])
    keep.append(out)
    m.data = cnp.PyArray_DATA(out)
    m.dtype = PT_F32
    m.out = a.shape[0]
    m.n_in = a.shape[1]
    m.scale = NULL
    return 0


cdef class NoiseSource:
    """The flow head's noise: MT19937 seeded like ``torch.manual_seed`` and normals drawn the
    way torch's CPU ``normal_`` / ``trunc_normal_`` draw them, so a seed gives the reference's
    noise to ~1 ulp. One source per model, like torch's global generator."""

    cdef PtRng rng

    def __init__(self, uint64_t seed=0):
        pt_rng_seed(&self.rng, seed)

    def seed(self, uint64_t seed):
        """Re-seed the generator."""
        pt_rng_seed(&self.rng, seed)

    def normal(self, float[::1] out, float std, object clamp=None):
        """Fill ``out`` with N(0, std^2) noise (truncated to +-clamp if given)."""
        cdef float c
        cdef int rc
        if clamp is None:
            with nogil:
                rc = pt_rng_normal(&self.rng, &out[0], out.shape[0], std)
            if rc != 0:
                raise ValueError("noise length must be a positive multiple of 16")
        else:
            c = clamp
            if not c > 0:
                raise ValueError("noise_clamp must be positive")
            with nogil:
                rc = pt_rng_trunc_normal(&self.rng, &out[0], out.shape[0], std, c)
            if rc != 0:
                raise ValueError("noise length must be a multiple of 16, at most 256")

    def random_u32(self):
        """Next raw 32-bit output of the generator."""
        return pt_rng_u32(&self.rng)


cdef class FlowLMState:
    """Per-stream flow-LM state: one KV cache per layer ([2, capacity, H_kv, D] each, K then V,
    keys stored after RoPE as in the reference), the write offset and scratch. The first
    positions may be a voice prompt's KV shared read-only with other streams (``shared_kv``);
    the state then owns only the positions after it (``own_kv``)."""

    cdef PtKVCache *caches
    cdef readonly object own_kv     # float32 [num_layers, 2, capacity - shared, H_kv, D]
    cdef readonly object shared_kv  # None, or float32 [num_layers, 2, shared, H_kv, D]
    cdef object scratch_arr
    cdef float *scratch
    cdef readonly int capacity
    cdef readonly int num_layers

    def __cinit__(self):
        self.caches = NULL

    def __dealloc__(self):
        if self.caches != NULL:
            free(self.caches)

    @property
    def offset(self):
        """Positions written so far (the next token's position)."""
        return int(self.caches[0].offset) if self.num_layers else 0

    @property
    def kv(self):
        """float32 [num_layers, 2, capacity, H_kv, D]: every position. The state's own array
        (written in place by steps) when it shares no prefix; otherwise a copy, shared
        prefix then own positions."""
        if self.shared_kv is None:
            return self.own_kv
        return np.concatenate((self.shared_kv, self.own_kv), axis=2)

    @property
    def shared_positions(self):
        """Leading positions read from ``shared_kv`` (0: none)."""
        return 0 if self.shared_kv is None else int(self.shared_kv.shape[2])

    @property
    def nbytes(self):
        """Bytes this state owns: its KV caches (not a shared prefix) and its scratch."""
        return int(self.own_kv.nbytes + self.scratch_arr.nbytes)

    def release_scratch(self):
        """Free the prefill scratch (a state stepped only by batched steps, whose scratch is
        the caller's, no longer needs it); a later single step or embedding allocates again."""
        self._set_scratch(0)

    cdef _set_scratch(self, size_t n):
        self.scratch_arr = np.zeros(max(n, 1), dtype=np.float32)
        self.scratch = <float *>cnp.PyArray_DATA(<cnp.ndarray>self.scratch_arr)



cdef class FlowLMKernel:
    """Read-only flow-LM weights laid out for the C kernels."""

    cdef PtFlowLM m
    cdef PtLayerWeights *layer_weights
    cdef list keep
    cdef readonly int d_model, ldim, cond_dim, num_layers, num_kv_heads, head_dim, n_bins

    def __cinit__(self):
        self.layer_weights = NULL

    def __dealloc__(self):
        if self.layer_weights != NULL:
            free(self.layer_weights)

    def __init__(self, object w, *, int num_heads, int num_kv_heads, int head_dim, int ffn_dim,
                 float max_period, int num_layers, str flow_type, int flow_depth,
                 int n_bins):
        """Bind the flow LM's tensors, taken by consumer field from ``w`` (the ``flow_lm``
        :class:`pocket_tts.checkpoint.layout.StageTensors`); each matrix comes in the storage
        its table entry gives it."""
        cdef list keep = []
        self.keep = keep
        cdef int d = w.shape("input_linear")[0]
        memset(&self.m, 0, sizeof(PtFlowLM))
        self.d_model = d
        self.ldim = w.shape("input_linear")[1]
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.n_bins = n_bins
        self.m.shape.d_model = d
        self.m.shape.num_heads = num_heads
        self.m.shape.num_kv_heads = num_kv_heads
        self.m.shape.head_dim = head_dim
        self.m.shape.ffn_dim = ffn_dim
        self.m.shape.context = 0
        self.m.shape.max_period = max_period
        self.m.num_layers = num_layers
        self.layer_weights = <PtLayerWeights *>malloc(num_layers * sizeof(PtLayerWeights))
        memset(self.layer_weights, 0, num_layers * sizeof(PtLayerWeights))
        cdef PtLayerWeights *lw
        for i in range(num_layers):
            lw = &self.layer_weights[i]
            ix = (i,)
            lw.norm1_w = _ptr(keep, w, "layers[].norm1_w", ix)
            lw.norm1_b = _ptr(keep, w, "layers[].norm1_b", ix)
            _matrix(&lw.in_proj, keep, w, "layers[].in_proj", ix,
                    (num_heads + 2 * num_kv_heads) * head_dim)
            _matrix(&lw.out_proj, keep, w, "layers[].out_proj", ix, d)
            lw.norm2_w = _ptr(keep, w, "layers[].norm2_w", ix)
            lw.norm2_b = _ptr(keep, w, "layers[].norm2_b", ix)
            _matrix(&lw.linear1, keep, w, "layers[].linear1", ix, ffn_dim)
            _matrix(&lw.linear2, keep, w, "layers[].linear2", ix, d)
        self.m.layers = self.layer_weights
        self.m.ldim = self.ldim
        _f32_matrix(&self.m.input_linear, keep, w, "input_linear")
        self.m.bos_emb = _ptr(keep, w, "bos_emb")
        self.m.out_norm_w = _ptr(keep, w, "out_norm_w")
        self.m.out_norm_b = _ptr(keep, w, "out_norm_b")
        if w.has("z_proj"):
            _f32_matrix(&self.m.z_proj, keep, w, "z_proj")
            self.m.cond_dim = self.m.z_proj.out
        else:
            self.m.cond_dim = d
        self.cond_dim = self.m.cond_dim
        self.m.eos_w = _ptr(keep, w, "eos_w")
        self.m.eos_b = float(w.take("eos_b")[0])
        # The lookup table: float32, or float16 bits in compact models (its storage class).
        if w.storage("embed") == "float16":
            table = w.take("embed")
            keep.append(table)
            self.m.embed = cnp.PyArray_DATA(table)
            self.m.embed_f16 = 1
        else:
            self.m.embed = _ptr(keep, w, "embed")
            self.m.embed_f16 = 0
        if w.has("embed_proj"):
            self.m.embed_dim = w.shape("embed_proj")[1]
            _f32_matrix(&self.m.embed_proj, keep, w, "embed_proj")
        else:
            self.m.embed_dim = d
        if flow_type not in FLOW_TYPES:
            raise ValueError(f"unknown flow type {flow_type!r}")
        if flow_depth > PT_FLOW_MAX_DEPTH:
            raise ValueError(f"flow depth {flow_depth} > {PT_FLOW_MAX_DEPTH}")
        self.m.head.type = FLOW_TYPES[flow_type]
        self.m.head.ldim = self.ldim
        cdef int width = w.shape("head.in_b")[0]
        self.m.head.width = width
        self.m.head.depth = flow_depth
        self.m.head.cond_dim = self.m.cond_dim
        self.m.head.num_time_conds = w.count("head.time[].freqs")
        for j in range(self.m.head.num_time_conds):
            ix = (j,)
            _matrix(&self.m.head.time[j].w0, keep, w, "head.time[].w0", ix, width)
            self.m.head.time[j].b0 = _ptr(keep, w, "head.time[].b0", ix)
            _matrix(&self.m.head.time[j].w2, keep, w, "head.time[].w2", ix, width)
            self.m.head.time[j].b2 = _ptr(keep, w, "head.time[].b2", ix)
            self.m.head.time[j].alpha = _ptr(keep, w, "head.time[].alpha", ix)
            self.m.head.time[j].freqs = _ptr(keep, w, "head.time[].freqs", ix)
        _matrix(&self.m.head.cond_w, keep, w, "head.cond_w", (), width)
        self.m.head.cond_b = _ptr(keep, w, "head.cond_b")
        _matrix(&self.m.head.in_w, keep, w, "head.in_w", (), width)
        self.m.head.in_b = _ptr(keep, w, "head.in_b")
        for b in range(flow_depth):
            ix = (b,)
            self.m.head.blocks[b].ln_w = _ptr(keep, w, "head.blocks[].ln_w", ix)
            self.m.head.blocks[b].ln_b = _ptr(keep, w, "head.blocks[].ln_b", ix)
            _matrix(&self.m.head.blocks[b].w0, keep, w, "head.blocks[].w0", ix, width)
            self.m.head.blocks[b].b0 = _ptr(keep, w, "head.blocks[].b0", ix)
            _matrix(&self.m.head.blocks[b].w2, keep, w, "head.blocks[].w2", ix, width)
            self.m.head.blocks[b].b2 = _ptr(keep, w, "head.blocks[].b2", ix)
            _matrix(&self.m.head.blocks[b].ada_w, keep, w, "head.blocks[].ada_w", ix, 3 * width)
            self.m.head.blocks[b].ada_b = _ptr(keep, w, "head.blocks[].ada_b", ix)
        _matrix(&self.m.head.final_ada_w, keep, w, "head.final_ada_w", (), 2 * width)
        self.m.head.final_ada_b = _ptr(keep, w, "head.final_ada_b")
        _matrix(&self.m.head.final_w, keep, w, "head.final_w", (), self.ldim)
        self.m.head.final_b = _ptr(keep, w, "head.final_b")

    def new_state(self, int capacity, int max_prefill=512, prefix=None, bint share_prefix=False):
        """Allocate a stream state with KV caches of ``capacity`` positions and scratch for
        prefill blocks of up to ``max_prefill`` positions; ``prefix`` (KV ``[L, 2, n, H, D]``)
        fills its first ``n`` positions: copied, or with ``share_prefix`` read in place (it
        must then be C-contiguous float32 and never be written again; the state keeps a
        reference). Positions not yet written hold NaN."""
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        cdef Py_ssize_t n_prefix = 0 if prefix is None else prefix.shape[2]
        if n_prefix > capacity:
            raise ValueError(f"capacity {capacity} < prefix {n_prefix}")
        cdef tuple kv_shape = (self.num_layers, 2, n_prefix, self.num_kv_heads, self.head_dim)
        if n_prefix and tuple(prefix.shape) != kv_shape:
            raise ValueError(f"prefix must be KV {list(kv_shape)}, got {list(prefix.shape)}")
        cdef bint shared = share_prefix and n_prefix > 0
        if shared and (not isinstance(prefix, np.ndarray) or prefix.dtype != np.float32
                       or not prefix.flags.c_contiguous):
            raise ValueError("a shared prefix must be a C-contiguous float32 array")
        cdef Py_ssize_t own = capacity - (n_prefix if shared else 0)
        cdef FlowLMState s = FlowLMState()
        s.capacity = capacity
        s.num_layers = self.num_layers
        s.shared_kv = prefix if shared else None
        # Written once: the prefix copied, the rest NaN (not NaN everywhere, then the prefix).
        s.own_kv = np.empty((self.num_layers, 2, own, self.num_kv_heads, self.head_dim),
                            dtype=np.float32)
        cdef Py_ssize_t copied = 0 if shared else n_prefix
        if copied:
            s.own_kv[:, :, :copied] = prefix
        s.own_kv[:, :, copied:] = np.nan
        s.caches = <PtKVCache *>malloc(self.num_layers * sizeof(PtKVCache))
        if s.caches == NULL:
            raise MemoryError()
        memset(s.caches, 0, self.num_layers * sizeof(PtKVCache))
        cdef float *base = <float *>cnp.PyArray_DATA(<cnp.ndarray>s.own_kv)
        cdef const float *pbase = NULL
        if shared:
            pbase = <const float *>cnp.PyArray_DATA(<cnp.ndarray>prefix)
        cdef size_t row = <size_t>self.num_kv_heads * self.head_dim
        cdef size_t per = <size_t>own * row, pper = <size_t>n_prefix * row
        cdef int l
        for l in range(self.num_layers):
            s.caches[l].k = base + (2 * l) * per
            s.caches[l].v = base + (2 * l + 1) * per
            s.caches[l].capacity = capacity
            s.caches[l].offset = n_prefix
            if shared:
                s.caches[l].prefix_k = pbase + (2 * l) * pper
                s.caches[l].prefix_v = pbase + (2 * l + 1) * pper
                s.caches[l].prefix = <int>n_prefix
        s._set_scratch(pt_flow_lm_scratch_size(&self.m, max(max_prefill, 1), 1, capacity))
        return s

    def embed_tokens(self, FlowLMState state, const long long[::1] tokens, float[:, ::1] out):
        """out[T, d] = text-token embeddings (lookup table, then low-rank projection)."""
        cdef int T = tokens.shape[0]
        if out.shape[0] != T or out.shape[1] != self.d_model:
            raise ValueError("out must be [T, d_model]")
        if T == 0:
            return
        if <size_t>state.scratch_arr.shape[0] < <size_t>T * self.m.embed_dim:
            state._set_scratch(<size_t>T * self.m.embed_dim)
        cdef int rc
        with nogil:
            rc = pt_flow_lm_embed_tokens(&self.m, &tokens[0], T, self.n_bins, &out[0, 0],
                                         state.scratch)
        if rc != 0:
            raise ValueError(f"token id outside [0, {self.n_bins}]")

    def prefill(self, FlowLMState state, float[:, ::1] x, int threads=2):
        """Run the transformer over conditioning embeddings x[T, d] (overwritten), appending
        them to the KV caches. Products are split over ``threads`` (<= 2) threads: a prefill
        runs while the decoder is idle (before a chunk's first frame)."""
        cdef int T = x.shape[0]
        if x.shape[1] != self.d_model:
            raise ValueError(f"prefill input must be [T, {self.d_model}]")
        if T == 0:
            return
        if state.caches[0].offset + T > state.capacity:
            raise ValueError(f"KV cache overflow: {state.caches[0].offset} + {T} > "
                             f"{state.capacity}")
        scratch_need = pt_flow_lm_scratch_size(&self.m, T, 1, state.capacity)
        if scratch_need > state.scratch_arr.shape[0]:
            state._set_scratch(scratch_need)
        cdef int rc
        with nogil:
            pt_gemm_set_threads(threads)
            rc = pt_flow_lm_prefill(&self.m, state.caches, &x[0, 0], T, state.scratch)
            pt_gemm_set_threads(1)
        if rc != 0:
            raise ValueError("KV cache overflow")

    def step(self, FlowLMState state, const float[::1] latent_in, const float[::1] noise,
             int steps, float[::1] latent_out, float[::1] cond_out, prefix=None,
             int threads=1):
        """One autoregressive frame; returns the raw EOS logit. ``latent_in`` all-NaN means BOS.
        Writes the sampled latent and the head's conditioning vector (out_norm [+ z_proj]).
        ``prefix`` (float32 [T, d]) is prefilled in the same pass, just before the latent;
        ``threads`` (<= 2) splits the products (use 2 only while the decoder is idle), or
        :data:`SHARED` offers them to a thread in :func:`help_until`. The one-stream case of
        :meth:`step_batch`, on the state's own scratch."""
        eos = np.empty(1, np.float32)
        need = self.batch_scratch_size(1 + (0 if prefix is None else len(prefix)), 1,
                                       state.capacity)
        if need > state.scratch_arr.shape[0]:
            state._set_scratch(need)
        self.step_batch([state], np.asarray(latent_in).reshape(1, -1),
                        np.asarray(noise).reshape(1, -1), np.asarray(latent_out).reshape(1, -1),
                        np.asarray(cond_out).reshape(1, -1), eos, state.scratch_arr, steps,
                        None if prefix is None else [prefix], threads)
        return float(eos[0])

    def batch_scratch_size(self, int rows, int n, int max_keys):
        """Scratch floats :meth:`step_batch` needs for ``n`` streams with ``rows`` rows in all
        (one per stream plus their prefixes) against caches of up to ``max_keys`` positions."""
        return pt_flow_lm_scratch_size(&self.m, rows, n, max_keys)

    def step_batch(self, list states, const float[:, ::1] latents_in,
                   const float[:, ::1] noise, float[:, ::1] latents_out, float[:, ::1] conds,
                   float[::1] eos_out, float[::1] scratch, int steps=1, prefixes=None,
                   int threads=1):
        """One frame of ``n = len(states)`` streams in one pass over the weights: row ``i`` of
        every array belongs to ``states[i]`` (``latents_in``/``noise``/``latents_out`` [n,
        ldim], ``conds`` [n, cond_dim], ``eos_out`` [n] raw EOS logits). ``prefixes``: None,
        or a list of n (None or float32 [T, d] rows prefilled just before that stream's
        latent). ``scratch``: float32 of at least :meth:`batch_scratch_size` floats. Each
        stream's results are bit-identical to stepping it alone. Raises ValueError, with
        nothing written, if a stream's KV cache would overflow."""
        cdef int n = len(states)
        if n == 0:
            return
        if (latents_in.shape[0] != n or noise.shape[0] != n or latents_out.shape[0] != n
                or conds.shape[0] != n or eos_out.shape[0] != n
                or latents_in.shape[1] != self.ldim or noise.shape[1] != self.ldim
                or latents_out.shape[1] != self.ldim or conds.shape[1] != self.cond_dim):
            raise ValueError(f"step_batch: wrong sizes: arrays must be [{n}, {self.ldim}] (conds [{n}, "
                             f"{self.cond_dim}], eos_out [{n}])")
        if steps < 1:
            raise ValueError("steps must be >= 1")
        if prefixes is not None and len(prefixes) != n:
            raise ValueError("prefixes must be None or one entry per state")
        # Up to 32 streams on the stack: a steady state allocates nothing per frame.
        cdef PtFlowLMRow local_rows[32]
        cdef PtFlowLMRow *rows = local_rows
        if n > 32:
            rows = <PtFlowLMRow *>malloc(n * sizeof(PtFlowLMRow))
            if rows == NULL:
                raise MemoryError()
        cdef FlowLMState st
        cdef const float[:, ::1] pre
        cdef list keep = []
        cdef int i, total = 0, max_keys = 1, rc
        try:
            for i in range(n):
                st = <FlowLMState?>states[i]
                if st.num_layers != self.num_layers:
                    raise ValueError("a state of another model")
                rows[i].caches = st.caches
                rows[i].prefix = NULL
                rows[i].T = 0
                p = None if prefixes is None else prefixes[i]
                if p is not None:
                    pre = p
                    if pre.shape[1] != self.d_model:
                        raise ValueError(f"prefix must be [T, {self.d_model}]")
                    keep.append(pre)
                    rows[i].T = pre.shape[0]
                    if rows[i].T > 0:
                        rows[i].prefix = &pre[0, 0]
                if st.caches[0].offset + rows[i].T + 1 > st.capacity:
                    raise ValueError(f"KV cache overflow: capacity {st.capacity} reached")
                rows[i].latent_in = &latents_in[i, 0]
                rows[i].noise = &noise[i, 0]
                rows[i].latent_out = &latents_out[i, 0]
                rows[i].cond = &conds[i, 0]
                rows[i].eos_logit = &eos_out[i]
                total += rows[i].T + 1
                max_keys = max(max_keys, st.capacity)
            if <size_t>scratch.shape[0] < pt_flow_lm_scratch_size(&self.m, total, n, max_keys):
                raise ValueError("step_batch: scratch smaller than batch_scratch_size()")
            with nogil:
                pt_gemm_set_threads(threads)
                rc = pt_flow_lm_step(&self.m, rows, n, steps, &scratch[0])
                pt_gemm_set_threads(1)
        finally:
            if rows != local_rows:
                free(rows)
        if rc != 0:
            raise ValueError("KV cache overflow")

    def sample_head(self, FlowLMState state, const float[::1] cond, const float[::1] noise,
                    int steps, float[::1] latent_out):
        """Run only the flow head: latent_out = decode(v(cond, .), noise) (benchmarks, tests)."""
        if (cond.shape[0] != self.cond_dim or noise.shape[0] != self.ldim
                or latent_out.shape[0] != self.ldim or steps < 1):
            raise ValueError("sample_head: wrong sizes or steps")
        cdef size_t need = pt_flow_lm_scratch_size(&self.m, 1, 1, 1)
        if need > <size_t>state.scratch_arr.shape[0]:
            state._set_scratch(need)
        with nogil:
            pt_flow_head_sample(&self.m.head, &cond[0], &noise[0], 1, steps, &latent_out[0],
                                state.scratch)

