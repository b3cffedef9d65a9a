"""Type stub of ``pocket_tts._native``, the compiled engine (``_native.pyx`` and its ``.pxi``
parts): every C kernel behind one extension module. Array arguments are C-contiguous numpy
arrays of the stated dtype (the kernels take typed memoryviews); float32 unless stated."""

from typing import Any

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_I32 = npt.NDArray[np.int32]

# ------------------------------------------------------------------------------------------
# Dispatch and threads (_native_kernels.pxi)
# ------------------------------------------------------------------------------------------

#: ``threads=SHARED``: offer every product in chunks to a thread waiting in :func:`help_until`.
SHARED: int
#: Flow-head type name -> its C code (``flow_type`` of :class:`FlowLMKernel`).
FLOW_TYPES: dict[str, int]

def has_avx2() -> bool:
    """True when the AVX2/FMA/F16C kernels are selected at run time."""

def force_generic(force: bool) -> None:
    """Force the portable kernels (tests run both paths); False restores detection."""

#: Instruction-set level names, lowest first.
ISA_LEVELS: tuple[str, ...]

def isa() -> str:
    """The instruction set the kernels use: ``"generic"``, ``"avx2"`` or ``"avx512"``."""

def cap_isa(level: str) -> None:
    """Use at most ``level`` from now on; ``"avx512"`` restores detection."""

def help_until(progress: _I32, target: int) -> None:
    """Spin on this core, computing chunks of posted ``SHARED`` products, until
    ``progress[0] >= target``."""

def progress_store(progress: _I32, value: int) -> None:
    """``progress[0] = value`` with release ordering: what :func:`help_until` waits for."""

# ------------------------------------------------------------------------------------------
# Single kernels (tests check each against a float64 twin; pack_nt / gemm_packed also serve
# the speaker projection)
# ------------------------------------------------------------------------------------------

def layer_norm(x: _F32, w: _F32 | None = None, b: _F32 | None = None, eps: float = 1e-5) -> _F32:
    """Row LayerNorm of ``x[T, C]`` with biased variance; ``w`` / ``b`` optional."""

def rms_norm_unbiased(x: _F32, alpha: _F32, eps: float = 1e-5) -> _F32:
    """``x * alpha / sqrt(eps + unbiased var(x))`` per row of ``x[T, C]``."""

def gelu_tanh(x: npt.ArrayLike) -> _F32:
    """GELU (tanh approximation) of a float32 copy of ``x``, same shape."""

def silu(x: npt.ArrayLike) -> _F32:
    """``x * sigmoid(x)`` of a float32 copy of ``x``, same shape."""

def elu(x: npt.ArrayLike) -> _F32:
    """ELU (alpha 1) of a float32 copy of ``x``, same shape."""

def rope(x: npt.ArrayLike, pos0: int, max_period: float = 10000.0) -> _F32:
    """RoPE (interleaved pairs) of ``x[T, H, D]`` at positions ``pos0 + t``; a new array."""

def rope_freqs(D: int, max_period: float = 10000.0) -> _F32:
    """The float32 RoPE frequencies ``[D / 2]`` of a D-wide head, as the kernels use them."""

def attention(
    q: _F32,
    k: _F32,
    v: _F32,
    cache_k: _F32,
    cache_v: _F32,
    offset: int,
    threads: int = 1,
    prefix_k: _F32 | None = None,
    prefix_v: _F32 | None = None,
) -> tuple[_F32, int]:
    """Causal attention of ``q[T, H, D]`` after appending ``k`` / ``v[T, H_kv, D]`` to a cache
    (``[cap, H_kv, D]`` each) holding ``offset`` positions: ``(out[T, H * D], new_offset)``.
    ``prefix_k`` / ``prefix_v`` (``[P, H_kv, D]``): the cache's first P slots, read-only,
    with ``cache_k`` / ``cache_v`` holding the slots after them."""

def gemm(
    x: _F32,
    packed: npt.NDArray[Any],
    dtype: str,
    out: int,
    scale: _F32 | None = None,
    threads: int = 1,
) -> _F32:
    """``y[T, out] = x[T, in] . W^T`` with W in panels ``[ceil(out/16), in, 16]`` of ``dtype``
    (float32, float16 / bfloat16 as uint16 bits, int8 with per-column ``scale``)."""

def pack_nt(w: _F32) -> _F32:
    """Pack float32 ``w[n, k]`` (torch Linear layout) into flat panels for :func:`gemm_packed`."""

def gemm_packed(x: _F32, packed: _F32, n: int, bias: _F32 | None = None) -> _F32:
    """``y[M, n] = x[M, k] . W^T (+ bias)`` with W packed by :func:`pack_nt`."""

# ------------------------------------------------------------------------------------------
# Load-time packing (_native_pack.pxi)
# ------------------------------------------------------------------------------------------

def pack_weights(w: _F32, dst: npt.NDArray[Any], scale: _F32 | None, dtype: str) -> None:
    """Pack ``w[out, in]`` into ``dst`` (``[ceil(out/16), in, 16]`` of the storage type);
    int8 writes its per-row scales into ``scale``."""

def to_half_bits(
    x: _F32, dtype: str, out: npt.NDArray[np.uint16] | None = None
) -> npt.NDArray[np.uint16]:
    """float32 -> float16 or bfloat16 bit patterns, as the packer rounds them."""

# ------------------------------------------------------------------------------------------
# Flow LM (_native_flow_lm.pxi)
# ------------------------------------------------------------------------------------------

class NoiseSource:
    """The flow head's noise: MT19937 seeded like ``torch.manual_seed``, normals drawn as
    torch's CPU ``normal_`` / ``trunc_normal_`` draw them."""

    def __init__(self, seed: int = 0) -> None: ...
    def seed(self, seed: int) -> None:
        """Re-seed the generator."""

    def normal(self, out: _F32, std: float, clamp: float | None = None) -> None:
        """Fill ``out`` with N(0, std^2) noise (truncated to +-clamp if given)."""

    def random_u32(self) -> int:
        """Next raw 32-bit output of the generator."""

class FlowLMState:
    """Per-stream flow-LM state: KV caches, write offset and scratch."""

    @property
    def kv(self) -> _F32:
        """float32 ``[num_layers, 2, capacity, H_kv, D]``: keys (after RoPE) then values (a
        copy when the state shares a prefix)."""

    @property
    def own_kv(self) -> _F32:
        """The positions this state owns (all, or those after its shared prefix)."""

    @property
    def shared_kv(self) -> _F32 | None:
        """The read-only prefix shared with other streams, or None."""

    @property
    def shared_positions(self) -> int:
        """Leading positions read from ``shared_kv``."""
    @property
    def capacity(self) -> int:
        """Positions the KV caches hold."""

    @property
    def num_layers(self) -> int:
        """Transformer layers (one KV cache each)."""

    @property
    def nbytes(self) -> int:
        """Bytes this state owns: its KV caches and its prefill scratch."""

    def release_scratch(self) -> None:
        """Free the prefill scratch; a later single step or embedding allocates again."""

    @property
    def offset(self) -> int:
        """Positions written so far (the next token's position)."""

class FlowLMKernel:
    """Read-only flow-LM weights laid out for the C kernels."""

    @property
    def d_model(self) -> int:
        """Transformer width."""

    @property
    def ldim(self) -> int:
        """Latent width."""

    @property
    def cond_dim(self) -> int:
        """Width of the flow head's conditioning vector (z_dim or d_model)."""

    @property
    def num_layers(self) -> int:
        """Transformer layers."""

    @property
    def num_kv_heads(self) -> int:
        """Key/value heads."""

    @property
    def head_dim(self) -> int:
        """Width of one head."""

    @property
    def n_bins(self) -> int:
        """Text-token ids are in ``[0, n_bins]``."""

    def __init__(
        self,
        w: Any,
        *,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        ffn_dim: int,
        max_period: float,
        num_layers: int,
        flow_type: str,
        flow_depth: int,
        n_bins: int,
    ) -> None:
        """Bind the flow LM's tensors, taken by consumer field from ``w`` (the ``flow_lm``
        :class:`pocket_tts.checkpoint.layout.StageTensors`), into the C structs."""

    def new_state(
        self,
        capacity: int,
        max_prefill: int = 512,
        prefix: _F32 | None = None,
        share_prefix: bool = False,
    ) -> FlowLMState:
        """A stream state with KV caches of ``capacity`` positions, ``prefix`` KV first
        (copied, or read in place with ``share_prefix``)."""

    def embed_tokens(self, state: FlowLMState, tokens: npt.NDArray[np.int64], out: _F32) -> None:
        """``out[T, d]`` = text-token embeddings of ``tokens[T]``."""

    def prefill(self, state: FlowLMState, x: _F32, threads: int = 2) -> None:
        """Run the transformer over ``x[T, d]`` (overwritten), appending to the KV caches."""

    def step(
        self,
        state: FlowLMState,
        latent_in: _F32,
        noise: _F32,
        steps: int,
        latent_out: _F32,
        cond_out: _F32,
        prefix: _F32 | None = None,
        threads: int = 1,
    ) -> float:
        """One autoregressive frame (``prefix`` rows prefilled in the same pass); writes the
        sampled latent and the head's conditioning vector, returns the raw EOS logit."""

    def batch_scratch_size(self, rows: int, n: int, max_keys: int) -> int:
        """Scratch floats ``step_batch`` needs for ``n`` streams, ``rows`` rows in all."""

    def step_batch(
        self,
        states: list[FlowLMState],
        latents_in: _F32,
        noise: _F32,
        latents_out: _F32,
        conds: _F32,
        eos_out: _F32,
        scratch: _F32,
        steps: int = 1,
        prefixes: list[_F32 | None] | None = None,
        threads: int = 1,
    ) -> None:
        """One frame of ``len(states)`` streams in one pass over the weights (row ``i`` of
        every array is ``states[i]``'s); each stream bit-identical to stepping it alone."""

    def sample_head(
        self, state: FlowLMState, cond: _F32, noise: _F32, steps: int, latent_out: _F32
    ) -> None:
        """Run only the flow head: ``latent_out = decode(v(cond, .), noise)``."""

# ------------------------------------------------------------------------------------------
# Mimi codec (_native_mimi.pxi)
# ------------------------------------------------------------------------------------------

class MimiDecoderState:
    """Per-stream decoder state: conv histories, KV windows and (unless made without one)
    its own per-frame scratch, allocated once."""

    #: Frames a single decode call may take (0 = unlimited).
    max_frames_per_call: int
    @property
    def state_arr(self) -> _F32:
        """float32 arena of the histories and KV windows."""

    @property
    def scratch_arr(self) -> _F32 | None:
        """float32 arena of one frame's work buffers (None: decoded with a lent scratch)."""

    @property
    def frames(self) -> int:
        """Frames decoded since creation or the last :meth:`reset`."""

    @property
    def offsets(self) -> list[int]:
        """Decoder-transformer KV offsets (positions seen), one per layer."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the state arena and its own scratch, if any."""

    def buffer_addresses(self) -> tuple[int, int | None]:
        """Data addresses of the arenas (tests check they never move)."""

    def reset(self) -> None:
        """Back to the start of a stream without reallocating anything."""

class MimiKernel:
    """Read-only Mimi weights laid out for the C kernels (decoder and encoder)."""

    @property
    def frame_size(self) -> int:
        """Audio samples per latent frame."""

    @property
    def ldim(self) -> int:
        """Decoder latent width."""

    @property
    def inner(self) -> int:
        """Encoder latent width."""

    @property
    def enc_context(self) -> int:
        """Encoder-transformer attention window."""

    def __init__(self, dec: dict[str, Any], enc: dict[str, Any]) -> None:
        """Bind the decoder / encoder specs built by ``pocket_tts.mimi._specs``."""

    def decoder_scratch(self) -> _F32:
        """A per-frame decoder scratch to lend to states made without their own."""

    def new_decoder_state(self, own_scratch: bool = True) -> MimiDecoderState:
        """A fresh decoder stream state (all memory allocated here, once)."""

    def decode(
        self,
        state: MimiDecoderState,
        latents: _F32,
        out: _F32,
        threads: int = 1,
        scratch: _F32 | None = None,
    ) -> None:
        """``latents[n, ldim]`` (de-normalised) -> ``out[n * frame_size]``; advances the
        stream (``scratch`` stands in for the state's own)."""

    def encode(
        self,
        audio: _F32,
        chunk_frames: int = 8,
        threads: int = 2,
        cancel: npt.NDArray[np.int32] | None = None,
    ) -> _F32 | None:
        """``audio[n * frame_size]`` (right-padded) -> latents ``[n, inner]`` (None when
        ``cancel[0]`` was set nonzero before a chunk)."""

def conv1d_stream(spec: dict[str, Any], chunks: list[_F32]) -> list[_F32]:
    """Streaming Conv1d over time-major chunks ``[T_i, c_in]`` -> ``[T_i / stride, c_out]``."""

def convtr1d_stream(spec: dict[str, Any], chunks: list[_F32]) -> list[_F32]:
    """Streaming ConvTranspose1d over chunks ``[T_i, c_in]`` -> ``[T_i * stride, c_out]``."""

def depthwise_stream(
    w_packed: _F32, bias: _F32 | None, kernel: int, stride: int, chunks: list[_F32]
) -> list[_F32]:
    """Streaming depthwise ConvTranspose1d (``w`` packed ``[taps * stride, C]``) over chunks
    ``[T_i, C]``."""

def window_attention_stream(
    context: int, chunks: list[tuple[_F32, _F32, _F32]], threads: int = 1
) -> list[_F32]:
    """Streaming context-window attention over chunks of ``(q, k, v)`` -> ``[T_i, H * D]``."""

def resblock_stream(conv1: dict[str, Any], conv2: dict[str, Any], chunks: list[_F32]) -> list[_F32]:
    """Streaming SEANet residual block over chunks ``[T_i, dim]`` -> ``[T_i, dim]``."""
