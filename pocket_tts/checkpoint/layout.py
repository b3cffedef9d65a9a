"""The tensor table of a config: every checkpoint tensor with its key, shape, storage and consumer.

:func:`tensor_table` is the one place that knows the checkpoint's key names (in the spirit of
whisper.cpp's ``whisper-arch.h``): for each tensor, its key and shape in the reference's
``TTSModel.state_dict()``, its :class:`~.storage.StorageClass` (how the loader and the kernels
store it) and its :class:`Consumer` (the stage that binds it and the field it fills). The loader
decides packing and dtype from the entry; the stages' binding code reads tensors by consumer
through :class:`StageTensors`; the packed-weights cache hashes the table.

Keys mirror how the reference builds its modules (``FlowLMModel.from_pydantic_config``,
``build_mimi``, ``SEANetEncoder/Decoder``, ``ProjectedTransformer`` ...) and come in the order
of the reference's ``state_dict()`` (each module's parameters, then its buffers, then its
children in registration order; ``flow_lm.speaker_proj_weight`` is attached after construction,
so it follows ``bos_emb``/``bos_before_voice``).

Consumer fields are the paths of the stages' C structs (csrc/flow_lm.h, csrc/mimi.h), one
``[]`` per array index: ``layers[].in_proj`` is ``PtFlowLM.layers[i].in_proj``. A few fields
are held by the Python stage objects instead (``speaker_proj``, ``bos_before_voice``,
``emb_mean``, ``emb_std``).

It reads only attributes of the config objects (``pocket_tts.config.Config`` or anything with the
same attribute names), never the YAML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .storage import (
    COMPACT_CONV_MIN_WEIGHTS,
    STORAGE_DTYPES,
    StorageClass,
    check_model_dtype,
    panel_shape,
)

if TYPE_CHECKING:
    from ..config import Config, MimiTransformerConfig, SEANetConfig

__all__ = [
    "FLOW_TIME_CONDITIONS",
    "Consumer",
    "StageTensors",
    "StoredMatrix",
    "TensorEntry",
    "expected_tensors",
    "parameter_count",
    "tensor_table",
]

#: Number of TimestepEmbedders (``flow_net.time_embed.{j}``) per flow head type.
FLOW_TIME_CONDITIONS = {"lsd": 2, "flow_matching": 1, "drifting": 0, "pointwise": 0}

_FREQ_EMBEDDING_SIZE = 256  # TimestepEmbedder's frequency_embedding_size (freqs has half of it)


class Consumer(NamedTuple):
    """Where a tensor goes: the stage that binds it, the field it fills and the indexes of the
    arrays on that field's path (layer, block, or SEANet stage and residual block)."""

    stage: str  # "flow_lm" or "mimi"
    field: str  # e.g. "layers[].in_proj", "head.blocks[].ada_w", "dec.seanet.res[][].conv1.w"
    indexes: tuple[int, ...] = ()

    def __str__(self) -> str:
        parts = self.field.split("[]")
        path = parts[0] + "".join(f"[{i}]{p}" for i, p in zip(self.indexes, parts[1:], strict=True))
        return f"{self.stage}: {path}"


@dataclass(frozen=True)
class TensorEntry:
    """One checkpoint tensor: its key and shape in the file, how it is stored, who binds it."""

    key: str
    shape: tuple[int, ...]
    storage: StorageClass
    consumer: Consumer


class _Table:
    """Builder of one stage's entries (keys under ``prefix``), in state-dict order."""

    def __init__(self, stage: str, prefix: str) -> None:
        self.stage = stage
        self.prefix = prefix
        self.entries: list[TensorEntry] = []

    def add(
        self,
        key: str,
        shape: tuple[int, ...],
        field: str,
        index: tuple[int, ...] = (),
        storage: StorageClass = StorageClass.FLOAT32,
    ) -> None:
        if field.count("[]") != len(index):
            raise AssertionError(f"{field}: {len(index)} indexes for its arrays")
        consumer = Consumer(self.stage, field, index)
        self.entries.append(TensorEntry(self.prefix + key, shape, storage, consumer))

    def linear(
        self,
        key: str,
        n_in: int,
        n_out: int,
        weight: str,
        bias: str | None,
        index: tuple[int, ...] = (),
        storage: StorageClass = StorageClass.FLOAT32,
    ) -> None:
        """``nn.Linear``: ``{key}weight`` [out, in] (+ ``{key}bias`` [out])."""
        self.add(key + "weight", (n_out, n_in), weight, index, storage)
        if bias is not None:
            self.add(key + "bias", (n_out,), bias, index)

    def layer_norm(
        self, key: str, dim: int, weight: str, bias: str, index: tuple[int, ...] = ()
    ) -> None:
        self.add(key + "weight", (dim,), weight, index)
        self.add(key + "bias", (dim,), bias, index)

    def conv(
        self,
        key: str,
        shape: tuple[int, int, int],
        c_out: int,
        field: str,
        index: tuple[int, ...] = (),
        bias: bool = True,
    ) -> None:
        """A SEANet conv's ``weight`` (+ ``bias`` [c_out]) filling ``{field}.w`` / ``.b``;
        large ones are :attr:`StorageClass.CODEC_CONV`."""
        large = math.prod(shape) >= COMPACT_CONV_MIN_WEIGHTS and c_out > 1
        storage = StorageClass.CODEC_CONV if large else StorageClass.FLOAT32
        self.add(key + "weight", shape, field + ".w", index, storage)
        if bias:
            self.add(key + "bias", (c_out,), field + ".b", index)

    def transformer_layer(
        self,
        key: str,
        field: str,
        index: tuple[int, ...],
        storage: StorageClass,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        layer_scale: bool,
        attn_dim: int | None = None,
        num_kv_heads: int | None = None,
    ) -> None:
        """A ``StreamingTransformerLayer`` filling a ``PtLayerWeights`` at ``field``."""
        attn = attn_dim or d_model
        kv_heads = num_kv_heads or num_heads
        if attn % num_heads:
            raise ValueError(f"attention width {attn} is not a multiple of num_heads {num_heads}")
        if num_heads % kv_heads:
            raise ValueError(f"num_heads {num_heads} is not a multiple of num_kv_heads {kv_heads}")
        head_dim = attn // num_heads
        in_rows = attn + 2 * kv_heads * head_dim
        self.linear(
            key + "self_attn.in_proj.", d_model, in_rows, field + ".in_proj", None, index, storage
        )
        self.linear(
            key + "self_attn.out_proj.", attn, d_model, field + ".out_proj", None, index, storage
        )
        self.layer_norm(key + "norm1.", d_model, field + ".norm1_w", field + ".norm1_b", index)
        self.layer_norm(key + "norm2.", d_model, field + ".norm2_w", field + ".norm2_b", index)
        self.linear(
            key + "linear1.", d_model, dim_feedforward, field + ".linear1", None, index, storage
        )
        self.linear(
            key + "linear2.", dim_feedforward, d_model, field + ".linear2", None, index, storage
        )
        if layer_scale:
            self.add(key + "layer_scale_1.scale", (d_model,), field + ".scale1", index)
            self.add(key + "layer_scale_2.scale", (d_model,), field + ".scale2", index)


def _flow_lm_entries(config: Config) -> list[TensorEntry]:
    """The flow LM (``FlowLMModel`` plus ``speaker_proj_weight``), stage ``flow_lm``."""
    f = config.flow_lm
    t = f.transformer
    lut = f.lookup_table
    ldim = config.mimi.quantizer.dimension
    d = t.d_model
    flow_type = f.flow.type
    if flow_type not in FLOW_TIME_CONDITIONS:
        raise ValueError(f"Unknown flow type: {flow_type}")
    head = StorageClass.HEAD_MATRIX
    tab = _Table("flow_lm", "flow_lm.")
    # FlowLMModel's own parameters, then its buffers.
    tab.add("bos_emb", (ldim,), "bos_emb")
    if f.insert_bos_before_voice:
        tab.add("bos_before_voice", (1, 1, d), "bos_before_voice")
    speaker_in = config.mimi.inner_dim or config.mimi.seanet.dimension
    tab.add("speaker_proj_weight", (d, speaker_in), "speaker_proj")
    tab.add("emb_std", (ldim,), "emb_std")
    tab.add("emb_mean", (ldim,), "emb_mean")
    # conditioner: LUTConditioner
    table_shape = (lut.n_bins + 1, lut.rank or lut.dim)
    tab.add("conditioner.embed.weight", table_shape, "embed", storage=StorageClass.EMBEDDING_TABLE)
    if lut.rank is not None:
        tab.add("conditioner.proj.weight", (lut.dim, lut.rank), "embed_proj")
    # flow_net: SimpleMLPAdaLN(latent, flow.dim, latent, z_dim or d_model, flow.depth)
    w = f.flow.dim
    for j in range(FLOW_TIME_CONDITIONS[flow_type]):
        q, ix = f"flow_net.time_embed.{j}.", (j,)
        tab.add(q + "freqs", (_FREQ_EMBEDDING_SIZE // 2,), "head.time[].freqs", ix)
        tab.linear(
            q + "mlp.0.", _FREQ_EMBEDDING_SIZE, w, "head.time[].w0", "head.time[].b0", ix, head
        )
        tab.linear(q + "mlp.2.", w, w, "head.time[].w2", "head.time[].b2", ix, head)
        tab.add(q + "mlp.3.alpha", (w,), "head.time[].alpha", ix)
    tab.linear("flow_net.cond_embed.", f.z_dim or d, w, "head.cond_w", "head.cond_b", (), head)
    tab.linear("flow_net.input_proj.", ldim, w, "head.in_w", "head.in_b", (), head)
    for r in range(f.flow.depth):
        q, ix = f"flow_net.res_blocks.{r}.", (r,)
        tab.layer_norm(q + "in_ln.", w, "head.blocks[].ln_w", "head.blocks[].ln_b", ix)
        tab.linear(q + "mlp.0.", w, w, "head.blocks[].w0", "head.blocks[].b0", ix, head)
        tab.linear(q + "mlp.2.", w, w, "head.blocks[].w2", "head.blocks[].b2", ix, head)
        tab.linear(
            q + "adaLN_modulation.1.",
            w,
            3 * w,
            "head.blocks[].ada_w",
            "head.blocks[].ada_b",
            ix,
            head,
        )
    tab.linear("flow_net.final_layer.linear.", w, ldim, "head.final_w", "head.final_b", (), head)
    tab.linear(
        "flow_net.final_layer.adaLN_modulation.1.",
        w,
        2 * w,
        "head.final_ada_w",
        "head.final_ada_b",
        (),
        head,
    )
    # backbone
    tab.linear("input_linear.", ldim, d, "input_linear", None)
    ff = t.dim_feedforward or int(d * t.hidden_scale)
    for i in range(t.num_layers):
        tab.transformer_layer(
            f"transformer.layers.{i}.",
            "layers[]",
            (i,),
            StorageClass.LM_MATRIX,
            d,
            t.num_heads,
            ff,
            layer_scale=False,
            attn_dim=t.attn_dim,
            num_kv_heads=t.num_kv_heads,
        )
    tab.layer_norm("out_norm.", d, "out_norm_w", "out_norm_b")
    if f.z_dim is not None:
        tab.linear("z_proj.", d, f.z_dim, "z_proj", None)
    tab.linear("out_eos.", f.z_dim or d, 1, "eos_w", "eos_b")
    return tab.entries


def _seanet_resblock(
    tab: _Table, key: str, field: str, index: tuple[int, ...], dim: int, kernel: int, compress: int
) -> None:
    hidden = dim // compress
    tab.conv(key + "block.1.conv.", (hidden, dim, kernel), hidden, field + ".conv1", index)
    tab.conv(key + "block.3.conv.", (dim, hidden, 1), dim, field + ".conv2", index)


def _seanet_encoder(tab: _Table, s: SEANetConfig) -> None:
    """``encoder.model.{idx}``: first conv, per stage residual blocks then a strided conv, last
    conv (the ELUs take indexes too)."""
    nf = s.n_filters
    tab.conv("encoder.model.0.conv.", (nf, s.channels, s.kernel_size), nf, "enc.seanet.first")
    idx = 1
    mult = 1
    for stage, ratio in enumerate(reversed(list(s.ratios))):
        for j in range(s.n_residual_layers):
            _seanet_resblock(
                tab,
                f"encoder.model.{idx}.",
                "enc.seanet.res[][]",
                (stage, j),
                mult * nf,
                s.residual_kernel_size,
                s.compress,
            )
            idx += 1
        idx += 1  # ELU
        c_out = mult * nf * 2
        shape = (c_out, mult * nf, 2 * ratio)
        tab.conv(f"encoder.model.{idx}.conv.", shape, c_out, "enc.seanet.down[]", (stage,))
        idx += 1
        mult *= 2
    idx += 1  # ELU
    shape = (s.dimension, mult * nf, s.last_kernel_size)
    tab.conv(f"encoder.model.{idx}.conv.", shape, s.dimension, "enc.seanet.last")


def _seanet_decoder(tab: _Table, s: SEANetConfig) -> None:
    """``decoder.model.{idx}``: first conv, per stage a transposed conv then residual blocks,
    last conv."""
    nf = s.n_filters
    mult = 2 ** len(s.ratios)
    tab.conv(
        "decoder.model.0.conv.",
        (mult * nf, s.dimension, s.kernel_size),
        mult * nf,
        "dec.seanet.first",
    )
    idx = 1
    for stage, ratio in enumerate(s.ratios):
        idx += 1  # ELU
        c_out = mult * nf // 2
        # StreamingConvTranspose1d: weight [in, out, K]
        shape = (mult * nf, c_out, 2 * ratio)
        tab.conv(f"decoder.model.{idx}.convtr.", shape, c_out, "dec.seanet.up[]", (stage,))
        idx += 1
        for j in range(s.n_residual_layers):
            _seanet_resblock(
                tab,
                f"decoder.model.{idx}.",
                "dec.seanet.res[][]",
                (stage, j),
                c_out,
                s.residual_kernel_size,
                s.compress,
            )
            idx += 1
        mult //= 2
    idx += 1  # ELU
    shape = (s.channels, nf, s.last_kernel_size)
    tab.conv(f"decoder.model.{idx}.conv.", shape, s.channels, "dec.seanet.last")


def _projected_transformer(tab: _Table, key: str, field: str, t: MimiTransformerConfig) -> None:
    """``ProjectedTransformer``: its layers fill ``{field}.layers[]``; its input and output
    projections (no shipped config has them) name fields no kernel binds."""
    for i in range(t.num_layers):
        tab.transformer_layer(
            f"{key}transformer.layers.{i}.",
            field + ".layers[]",
            (i,),
            StorageClass.CODEC_MATRIX,
            t.d_model,
            t.num_heads,
            t.dim_feedforward,
            layer_scale=t.layer_scale is not None,
        )
    if t.d_model != t.input_dimension:
        tab.linear(key + "input_proj.", t.input_dimension, t.d_model, field + ".input_proj", None)
    for j, out_dim in enumerate(t.output_dimensions):
        if out_dim != t.d_model:
            tab.linear(
                f"{key}output_projs.{j}.", t.d_model, out_dim, field + ".output_projs[]", None, (j,)
            )


def _mimi_entries(config: Config) -> list[TensorEntry]:
    """The Mimi codec (``build_mimi(config.mimi)``), stage ``mimi``."""
    m = config.mimi
    enc = m.seanet
    dec = m.decoder_seanet or m.seanet
    tab = _Table("mimi", "mimi.")
    _seanet_encoder(tab, enc)
    _seanet_decoder(tab, dec)
    _projected_transformer(tab, "encoder_transformer.", "enc", m.transformer)
    _projected_transformer(
        tab, "decoder_transformer.", "dec", m.decoder_transformer or m.transformer
    )
    q = m.quantizer
    tab.add("quantizer.output_proj.weight", (q.output_dimension, q.dimension, 1), "dec.quant")
    hop = math.prod(enc.ratios)
    encoder_frame_rate = m.sample_rate / hop
    if encoder_frame_rate != m.frame_rate:
        stride = encoder_frame_rate / m.frame_rate
        if stride != int(stride) or stride < 1:
            raise ValueError(f"Only integer downsampling strides are supported, got {stride}")
        stride = int(stride)
        # ConvDownsample1d(stride, dimension=encoder.dimension, out_dimension=inner_dim)
        inner = m.inner_dim or enc.dimension
        shape = (inner, enc.dimension, 2 * stride)
        tab.conv("downsample.conv.conv.", shape, inner, "enc.down", bias=False)
        # ConvTrUpsample1d(stride, dimension=decoder.dimension, in_dimension=outer_dim):
        # depthwise (groups = decoder.dimension), bound as its own packed vector.
        outer = m.outer_dim or dec.dimension
        shape = (outer, 1, 2 * stride)
        tab.add("upsample.convtr.convtr.weight", shape, "dec.up_w")
    return tab.entries


def tensor_table(config: Config) -> list[TensorEntry]:
    """Every tensor of the reference ``TTSModel.state_dict()`` for ``config``, in its order (all
    ``flow_lm.*`` keys, then ``mimi.*``), with its storage class and consumer.

    ``config`` is a :class:`pocket_tts.config.Config` (or an object with the same attributes).
    Raises ``ValueError`` for a config no reference model can have (unknown flow type, heads
    that do not divide the width, a non-integer resampling stride).
    """
    return _flow_lm_entries(config) + _mimi_entries(config)


def expected_tensors(config: Config) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of :func:`tensor_table`, in state-dict order."""
    return {e.key: e.shape for e in tensor_table(config)}


def parameter_count(config: Config, prefix: str = "") -> int:
    """Number of checkpoint values whose key starts with ``prefix`` (``freqs`` buffers excluded)."""
    return sum(
        math.prod(shape)
        for key, shape in expected_tensors(config).items()
        if key.startswith(prefix) and not key.endswith(".freqs")
    )


# --------------------------------------------------------------------------------------------
# binding: one stage's tensors by consumer


class StoredMatrix(NamedTuple):
    """A matrix as its binding receives it."""

    key: str  # checkpoint key (for error messages)
    data: np.ndarray  # panels [ceil(out/16), in, 16] in `storage`, or float32 [out, in]
    storage: str  # storage dtype name (see storage.STORAGE_DTYPES)
    scale: np.ndarray | None  # int8 only: float32 per-row scales [ceil(out/16) * 16]


class StageTensors:
    """One stage's checkpoint tensors, looked up by consumer field and index.

    Built from a ``{key: array}`` mapping as :func:`pocket_tts.checkpoint.loader.load_weights`
    returns it for a model loaded in ``dtype`` (each of the stage's keys is looked up once, so a
    mapping that hands its arrays over on lookup is emptied). Each tensor is taken once
    (:meth:`take`, :meth:`take_matrix`), so memory is released as the binding re-lays it out;
    :meth:`finish` raises if the binding left a tensor of the table unused.
    """

    def __init__(
        self, config: Config, stage: str, weights: Mapping[str, np.ndarray], dtype: str
    ) -> None:
        """Collect ``stage``'s tensors of ``config`` from ``weights``; ``ValueError`` names
        every key missing from it."""
        self.stage = stage
        self.dtype = check_model_dtype(dtype)
        entries = [e for e in tensor_table(config) if e.consumer.stage == stage]
        if not entries:
            raise ValueError(f"no tensors for stage {stage!r}")
        missing = [e.key for e in entries if e.key not in weights]
        if missing:
            raise ValueError(
                f"{stage}: the weights lack {len(missing)} tensors ({', '.join(missing)}); "
                "pass every tensor of the checkpoint, e.g. from load_weights()"
            )
        self._entries = {(e.consumer.field, e.consumer.indexes): e for e in entries}
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        self._scales: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        for e in entries:
            slot = (e.consumer.field, e.consumer.indexes)
            self._arrays[slot] = weights[e.key]
            if e.storage.packed and e.storage.dtype(dtype) == "int8":
                if e.key + ".scale" not in weights:
                    raise ValueError(f"{e.key}: int8 weights without their {e.key}.scale")
                self._scales[slot] = weights[e.key + ".scale"]

    def _entry(self, field: str, index: tuple[int, ...]) -> TensorEntry:
        try:
            return self._entries[field, index]
        except KeyError:
            raise KeyError(f"{self.stage} has no tensor for {field} {list(index)}") from None

    def has(self, field: str, *index: int) -> bool:
        """True when the table has a tensor for this consumer field (optional tensors)."""
        return (field, index) in self._entries

    def count(self, field: str) -> int:
        """Number of tensors filling ``field`` (its array's length)."""
        return sum(1 for f, _ in self._entries if f == field)

    def key(self, field: str, *index: int) -> str:
        """Checkpoint key of the tensor filling this field."""
        return self._entry(field, index).key

    def shape(self, field: str, *index: int) -> tuple[int, ...]:
        """Checkpoint shape of the tensor filling this field."""
        return self._entry(field, index).shape

    def storage(self, field: str, *index: int) -> str:
        """Storage dtype name of this tensor in the kernels (its class, for this model dtype)."""
        return self._entry(field, index).storage.dtype(self.dtype)

    def _pop(self, entry: TensorEntry) -> np.ndarray:
        slot = (entry.consumer.field, entry.consumer.indexes)
        if slot not in self._arrays:
            raise RuntimeError(f"{entry.key} ({entry.consumer}) was already taken")
        arr = self._arrays.pop(slot)
        if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous:
            raise ValueError(f"{entry.key}: expected a C-contiguous numpy array")
        return arr

    def take(self, field: str, *index: int) -> np.ndarray:
        """The array filling this field, in its loaded form: checked against the table."""
        entry = self._entry(field, index)
        if entry.storage.packed:
            raise TypeError(f"{entry.key} is a packed matrix: use take_matrix")
        arr = self._pop(entry)
        # CODEC_CONV tensors are loaded float32: the codec's binding narrows them itself.
        loaded = entry.storage.dtype(self.dtype)
        if entry.storage is StorageClass.CODEC_CONV:
            loaded = "float32"
        element = STORAGE_DTYPES[loaded].element
        if arr.dtype != element or arr.shape != entry.shape:
            raise ValueError(
                f"{entry.key}: expected {loaded} {list(entry.shape)} for a {self.dtype} model, "
                f"got {arr.dtype} {list(arr.shape)}; load the weights with "
                f"load_weights(..., dtype={self.dtype!r})"
            )
        return arr

    def take_matrix(self, field: str, *index: int) -> StoredMatrix:
        """The packed matrix filling this field: panels in its storage dtype (with its int8
        scales), or float32 ``[out, in]`` for a binding that packs it itself."""
        entry = self._entry(field, index)
        if not entry.storage.packed:
            raise TypeError(f"{entry.key} is not a packed matrix: use take")
        arr = self._pop(entry)
        storage = entry.storage.dtype(self.dtype)
        element = STORAGE_DTYPES[storage].element
        as_panels = arr.dtype == element and arr.shape == panel_shape(entry.shape)
        raw = arr.dtype == np.float32 and arr.shape == entry.shape
        if not (as_panels or raw):
            raise ValueError(
                f"{entry.key}: expected {storage} panels {list(panel_shape(entry.shape))} (or "
                f"float32 {list(entry.shape)}) for a {self.dtype} model, got {arr.dtype} "
                f"{list(arr.shape)}; load the weights with load_weights(..., dtype={self.dtype!r})"
            )
        scale = self._scales.pop((field, index), None)
        return StoredMatrix(entry.key, arr, storage, scale)

    def remaining(self) -> list[str]:
        """Keys not taken yet, in table order."""
        return [e.key for slot, e in self._entries.items() if slot in self._arrays]

    def finish(self) -> None:
        """Check that the binding took every tensor of its stage (a table entry that no binding
        reads is a bug, not a user error)."""
        left = self.remaining()
        if left:
            raise RuntimeError(f"{self.stage}: the binding left {len(left)} tensors unused: {left}")
