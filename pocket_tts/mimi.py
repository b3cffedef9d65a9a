"""Mimi codec: latents -> 24 kHz audio (streaming decoder) and audio -> latents (encoder).

A thin Python layer over the C kernels in ``csrc/mimi/`` (``mimi.c``, ``seanet.c``, ``conv.c``;
driven by ``_native_mimi.pxi``). :class:`Mimi` is read-only and can be shared between streams;
every decoding stream owns a :class:`MimiDecoderState` that holds all of its memory (conv
histories, KV windows of the ``context`` last positions, one frame of scratch), allocated once.

Activations are time-major ``[T, C]`` inside the kernels (see csrc/mimi/conv.h); conv weights
are repacked once here from the reference layout.

Decoding a call of ``n`` frames runs the one-frame computation ``n`` times, so the audio does
not depend on how frames are grouped into calls (bit for bit). The reference decoder gets
``latent * emb_std + emb_mean``; :meth:`Mimi.decode` takes latents already de-normalised
(:meth:`Mimi.denormalize` does it the reference's way)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _native
from .checkpoint.layout import StageTensors
from .config import Config, MimiTransformerConfig, SEANetConfig

MimiDecoderState = _native.MimiDecoderState

__all__ = [
    "Mimi",
    "MimiDecoderState",
    "pack_conv1d",
    "pack_convtr1d",
    "pack_depthwise_convtr1d",
]

#: Frames per chunk of the encoder's streaming pass (bounds its working memory).
ENCODE_CHUNK_FRAMES = 8


def pack_conv1d(
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: int = 1,
    dilation: int = 1,
    replicate: bool = False,
) -> dict:
    """Spec of a Conv1d for the C kernels from a torch-layout weight ``w[c_out, c_in, K]``.

    The packed weight is ``[c_out, K * c_in]`` with ``packed[o, k * c_in + c] = w[o, c, k]``.
    """
    c_out, c_in, k = w.shape
    packed = np.ascontiguousarray(np.transpose(w, (0, 2, 1)).reshape(c_out, k * c_in))
    return dict(
        w=packed.astype(np.float32, copy=False),
        b=None if b is None else np.ascontiguousarray(b, dtype=np.float32),
        c_in=c_in,
        c_out=c_out,
        kernel=k,
        stride=stride,
        dilation=dilation,
        replicate=replicate,
    )


def pack_convtr1d(w: np.ndarray, b: np.ndarray | None = None, *, stride: int) -> dict:
    """Spec of a ConvTranspose1d (groups 1) from a torch-layout weight ``w[c_in, c_out, K]``.

    Packed ``[taps, c_in, stride * c_out]`` with ``packed[g, c, j * c_out + o] =
    w[c, o, g * stride + j]`` (zero past K), ``taps = ceil(K / stride)``.
    """
    c_in, c_out, k = w.shape
    taps = -(-k // stride)
    wp = np.zeros((c_in, c_out, taps * stride), np.float32)
    wp[:, :, :k] = w
    packed = wp.reshape(c_in, c_out, taps, stride).transpose(2, 0, 3, 1)
    return dict(
        w=np.ascontiguousarray(packed.reshape(taps, c_in, stride * c_out)),
        b=None if b is None else np.ascontiguousarray(b, dtype=np.float32),
        c_in=c_in,
        c_out=c_out,
        kernel=k,
        stride=stride,
    )


def pack_depthwise_convtr1d(w: np.ndarray, stride: int) -> np.ndarray:
    """Packed ``[taps * stride, C]`` weight of a depthwise ConvTranspose1d ``w[C, 1, K]``."""
    c, one, k = w.shape
    if one != 1:
        raise ValueError(f"depthwise weight must be [C, 1, K], got {w.shape}")
    taps = -(-k // stride)
    packed = np.zeros((taps * stride, c), np.float32)
    packed[:k] = w[:, 0, :].T
    return packed


def _conv(w: StageTensors, field: str, *index: int, **kw: Any) -> dict:
    """Spec of the conv filling ``field`` (its ``.w`` and ``.b`` if any), in the storage its
    table entry gives it."""
    b = w.take(field + ".b", *index) if w.has(field + ".b", *index) else None
    spec = pack_conv1d(w.take(field + ".w", *index), b, **kw)
    spec["storage"] = w.storage(field + ".w", *index)
    return spec


def _res(w: StageTensors, field: str, stage: int, j: int, dilation: int) -> tuple[dict, dict]:
    return (
        _conv(w, field + ".conv1", stage, j, dilation=dilation),
        _conv(w, field + ".conv2", stage, j),
    )


_LAYER_VECTORS = ("norm1_w", "norm1_b", "norm2_w", "norm2_b")
_LAYER_MATRICES = ("in_proj", "out_proj", "linear1", "linear2")


def _transformer(w: StageTensors, part: str, t: MimiTransformerConfig) -> dict:
    """Spec of the ``part`` (``dec`` / ``enc``) transformer: its layers' tensors by field."""
    if t.d_model != t.input_dimension or any(d != t.d_model for d in t.output_dimensions):
        raise NotImplementedError(
            f"mimi {part} transformer: input/output projections are not supported "
            "(no shipped config has them)"
        )
    if len(t.output_dimensions) != 1:
        raise NotImplementedError(f"mimi {part} transformer: exactly one output is supported")
    layers = []
    for i in range(t.num_layers):
        field = part + ".layers[]."
        layer: dict = {name: w.take(field + name, i) for name in _LAYER_VECTORS}
        layer.update({name: w.take_matrix(field + name, i) for name in _LAYER_MATRICES})
        for name in ("scale1", "scale2"):
            if w.has(field + name, i):
                layer[name] = w.take(field + name, i)
        layers.append(layer)
    return dict(
        d_model=t.d_model,
        num_heads=t.num_heads,
        dim_feedforward=t.dim_feedforward,
        context=t.context,
        max_period=float(t.max_period),
        layers=layers,
    )


def _check_seanet(s: SEANetConfig, what: str) -> None:
    if s.pad_mode != "constant":
        raise NotImplementedError(f"{what}: pad_mode {s.pad_mode!r} (only 'constant' exists)")
    if not s.ratios or len(s.ratios) > 8 or not 1 <= s.n_residual_layers <= 4:
        raise NotImplementedError(f"{what}: unsupported ratios / residual layer count")


def _specs(config: Config, w: StageTensors) -> tuple[dict, dict]:
    """Decoder and encoder specs (packed weights + shapes) for :class:`_native.MimiKernel`, from
    the ``mimi`` tensors taken by consumer field; every matrix and conv carries the storage its
    table entry gives it."""
    m = config.mimi
    enc, dec = m.seanet, m.decoder_seanet or m.seanet
    _check_seanet(enc, "mimi.seanet")
    _check_seanet(dec, "mimi.decoder_seanet")
    hop = math.prod(enc.ratios)
    if math.prod(dec.ratios) != hop:
        raise NotImplementedError("encoder and decoder SEANet hops differ")
    enc_rate = m.sample_rate / hop
    stride = enc_rate / m.frame_rate
    if stride != int(stride) or stride <= 1:
        raise NotImplementedError(f"Mimi resampling stride {stride} is not an integer > 1")
    stride = int(stride)
    frame_size = int(m.sample_rate / m.frame_rate)
    if frame_size != stride * hop:
        raise NotImplementedError("frame size is not stride * hop")

    # Decoder: quantizer -> depthwise upsample -> transformer -> SEANet decoder.
    outer = m.outer_dim or dec.dimension
    if outer != dec.dimension:
        raise NotImplementedError("upsample with outer_dim != decoder dimension")
    stages = []
    for s, ratio in enumerate(dec.ratios):
        up = w.take("dec.seanet.up[].w", s)
        bias = w.take("dec.seanet.up[].b", s) if w.has("dec.seanet.up[].b", s) else None
        stage = dict(
            up=dict(
                pack_convtr1d(up, bias, stride=ratio), storage=w.storage("dec.seanet.up[].w", s)
            ),
            res=[
                _res(w, "dec.seanet.res[][]", s, j, dec.dilation_base**j)
                for j in range(dec.n_residual_layers)
            ],
        )
        stages.append(stage)
    up_w = w.take("dec.up_w")
    decoder = dict(
        ldim=m.quantizer.dimension,
        outer=outer,
        stride=stride,
        up_kernel=int(up_w.shape[2]),
        frame_size=frame_size,
        quant_w=np.ascontiguousarray(w.take("dec.quant")[:, :, 0]),
        up_w=pack_depthwise_convtr1d(up_w, stride),
        transformer=_transformer(w, "dec", m.decoder_transformer or m.transformer),
        seanet=dict(
            first=_conv(w, "dec.seanet.first"), stages=stages, last=_conv(w, "dec.seanet.last")
        ),
    )

    # Encoder: SEANet encoder -> transformer -> downsample (replicate padding).
    stages = []
    for s, ratio in enumerate(reversed(list(enc.ratios))):
        stage = dict(
            res=[
                _res(w, "enc.seanet.res[][]", s, j, enc.dilation_base**j)
                for j in range(enc.n_residual_layers)
            ],
            down=_conv(w, "enc.seanet.down[]", s, stride=ratio),
        )
        stages.append(stage)
    encoder = dict(
        dim=enc.dimension,
        inner=m.inner_dim or enc.dimension,
        stride=stride,
        frame_size=frame_size,
        seanet=dict(
            first=_conv(w, "enc.seanet.first"), stages=stages, last=_conv(w, "enc.seanet.last")
        ),
        transformer=_transformer(w, "enc", m.transformer),
        down=_conv(w, "enc.down", stride=stride, replicate=True),
    )
    return decoder, encoder


class Mimi:
    """The Mimi codec of one config, with weights bound to the C kernels (read-only)."""

    def __init__(
        self, config: Config, weights: dict[str, np.ndarray], dtype: str = "float32"
    ) -> None:
        """Bind ``weights`` (the ``mimi.*`` tensors from
        :func:`pocket_tts.checkpoint.loader.load_weights` for a model in ``dtype``, or float32
        ``[out, in]`` transformer matrices, packed here) for ``config``'s Mimi. Its
        transformers' matrices and large convs are stored as their storage class says for
        ``dtype``: float32 in a float32 model, float16 in a compact one. A mapping that hands
        its arrays over on lookup is emptied, so loading never holds two copies of the codec."""
        m = config.mimi
        if m.channels != 1:
            raise NotImplementedError(f"only mono Mimi is supported, got {m.channels} channels")
        self.config = config
        self.sample_rate: int = m.sample_rate
        self.frame_rate: float = m.frame_rate
        tensors = StageTensors(config, "mimi", weights, dtype)
        dec, enc = _specs(config, tensors)
        tensors.finish()
        self.kernel = _native.MimiKernel(dec, enc)
        self.frame_size: int = self.kernel.frame_size
        #: Latent width the decoder takes (quantizer.dimension, 32).
        self.ldim: int = self.kernel.ldim
        #: Latent width the encoder emits (inner_dim; 32, or 512 for english_2026-01).
        self.inner_dim: int = self.kernel.inner
        #: Decoder-transformer steps per latent frame (16).
        self.steps_per_frame: int = dec["stride"]

    def new_decoder_state(
        self, max_frames_per_call: int | None = None, own_scratch: bool = True
    ) -> MimiDecoderState:
        """A fresh decoding stream. Its memory is allocated here, once: decoding is frame by
        frame internally, so the scratch is one frame whatever the call size.
        ``max_frames_per_call`` (optional) makes :meth:`decode` refuse larger calls. With
        ``own_scratch=False`` the state has no scratch (about 1.5 MB saved per stream) and
        :meth:`decode` must be given one from :meth:`decoder_scratch`."""
        if max_frames_per_call is not None and max_frames_per_call < 1:
            raise ValueError("max_frames_per_call must be >= 1")
        state = self.kernel.new_decoder_state(own_scratch)
        state.max_frames_per_call = max_frames_per_call or 0
        return state

    def denormalize(
        self, latents: np.ndarray, emb_mean: np.ndarray, emb_std: np.ndarray
    ) -> np.ndarray:
        """``latents * emb_std + emb_mean`` in float32 (two roundings, as torch does)."""
        x = np.asarray(latents, dtype=np.float32) * np.asarray(emb_std, dtype=np.float32)
        return x + np.asarray(emb_mean, dtype=np.float32)

    def decoder_scratch(self) -> np.ndarray:
        """One frame of decoder work memory for :meth:`decode` to lend to states made with
        ``own_scratch=False`` (one per decoding thread: a call uses it until it returns)."""
        return self.kernel.decoder_scratch()

    def decode(
        self,
        state: MimiDecoderState,
        latents: np.ndarray,
        out: np.ndarray | None = None,
        threads: int = 1,
        scratch: np.ndarray | None = None,
    ) -> np.ndarray:
        """Decode ``latents[n, ldim]`` (de-normalised) into ``out[n * frame_size]`` (float32,
        allocated if None), continuing the stream in ``state``. Returns ``out``. ``threads=2``
        splits the large products over both cores (same audio, bit for bit). ``scratch``
        (:meth:`decoder_scratch`) replaces the state's own work memory for this call.

        Raises ``ValueError`` for a wrong shape, non-finite latents, or more frames than the
        state's ``max_frames_per_call``. The GIL is released while decoding; the audio is the
        same bit for bit however frames are grouped into calls."""
        z = np.ascontiguousarray(latents, dtype=np.float32)
        if z.ndim == 1:
            z = z.reshape(1, -1)
        if z.ndim != 2 or z.shape[1] != self.ldim:
            raise ValueError(f"latents must be [n, {self.ldim}], got {np.shape(latents)}")
        if not np.isfinite(z).all():
            raise ValueError("latents contain NaN or infinite values")
        n = z.shape[0]
        limit = state.max_frames_per_call
        if limit and n > limit:
            raise ValueError(f"{n} frames in one call, but the state allows {limit}")
        if out is None:
            out = np.empty(n * self.frame_size, np.float32)
        elif (
            not isinstance(out, np.ndarray)
            or out.dtype != np.float32
            or out.shape != (n * self.frame_size,)
            or not out.flags.c_contiguous
            or not out.flags.writeable
        ):
            raise ValueError(
                f"out must be a writable contiguous float32 array of shape ({n * self.frame_size},)"
            )
        self.kernel.decode(state, z, out, threads, scratch)
        return out

    def encode(self, audio: np.ndarray, cancel: np.ndarray | None = None) -> np.ndarray | None:
        """Encode mono 24 kHz ``audio[T]`` into raw (not normalised) latents ``[N, inner_dim]``,
        ``N = ceil(T / frame_size)`` after right-padding with zeros, like the reference's
        ``encode_to_latent``. ``cancel`` (int32 ``[1]``, set nonzero from another thread)
        stops it within one chunk of :data:`ENCODE_CHUNK_FRAMES` frames: None is returned."""
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise ValueError(f"audio must be mono [T], got shape {np.shape(audio)}")
        if x.shape[0] == 0:
            raise ValueError("audio is empty")
        if not np.isfinite(x).all():
            raise ValueError("audio contains NaN or infinite values")
        n = -(-x.shape[0] // self.frame_size)
        padded = np.zeros(n * self.frame_size, np.float32)
        padded[: x.shape[0]] = x
        return self.kernel.encode(padded, ENCODE_CHUNK_FRAMES, 2, cancel)
