"""The TTSModel state-dict layout: every checkpoint key and shape, for any config.

This mirrors how the reference builds its modules (``FlowLMModel.from_pydantic_config``,
``build_mimi``, ``SEANetEncoder/Decoder``, ``ProjectedTransformer`` ...) and lists the keys in
the order of the reference's ``TTSModel.state_dict()`` (each module's parameters, then its
buffers, then its children in registration order; ``flow_lm.speaker_proj_weight`` is attached
after construction, so it follows ``bos_emb``/``bos_before_voice``).

It reads only attributes of the config objects (``pocket_tts.config.Config`` or anything with the
same attribute names), never the YAML.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config, MimiTransformerConfig, SEANetConfig

__all__ = [
    "FLOW_TIME_CONDITIONS",
    "expected_tensors",
    "flow_lm_tensors",
    "mimi_tensors",
    "parameter_count",
]

Shapes = dict[str, tuple[int, ...]]

#: Number of TimestepEmbedders (``flow_net.time_embed.{j}``) per flow head type.
FLOW_TIME_CONDITIONS = {"lsd": 2, "flow_matching": 1, "drifting": 0, "pointwise": 0}

_FREQ_EMBEDDING_SIZE = 256  # TimestepEmbedder's frequency_embedding_size (freqs has half of it)


def _linear(sd: Shapes, prefix: str, n_in: int, n_out: int, bias: bool = True) -> None:
    sd[prefix + "weight"] = (n_out, n_in)
    if bias:
        sd[prefix + "bias"] = (n_out,)


def _layer_norm(sd: Shapes, prefix: str, dim: int) -> None:
    sd[prefix + "weight"] = (dim,)
    sd[prefix + "bias"] = (dim,)


def _conv(
    sd: Shapes, prefix: str, n_in: int, n_out: int, kernel: int, groups: int = 1, bias: bool = True
) -> None:
    """StreamingConv1d: ``{prefix}conv.weight`` [out, in/groups, K] (+ bias)."""
    sd[prefix + "conv.weight"] = (n_out, n_in // groups, kernel)
    if bias:
        sd[prefix + "conv.bias"] = (n_out,)


def _convtr(
    sd: Shapes, prefix: str, n_in: int, n_out: int, kernel: int, groups: int = 1, bias: bool = True
) -> None:
    """StreamingConvTranspose1d: ``{prefix}convtr.weight`` [in, out/groups, K] (+ bias)."""
    sd[prefix + "convtr.weight"] = (n_in, n_out // groups, kernel)
    if bias:
        sd[prefix + "convtr.bias"] = (n_out,)


def _transformer_layer(
    sd: Shapes,
    prefix: str,
    d_model: int,
    num_heads: int,
    dim_feedforward: int,
    layer_scale: bool,
    attn_dim: int | None = None,
    num_kv_heads: int | None = None,
) -> None:
    attn = attn_dim or d_model
    kv_heads = num_kv_heads or num_heads
    if attn % num_heads:
        raise ValueError(f"attention width {attn} is not a multiple of num_heads {num_heads}")
    if num_heads % kv_heads:
        raise ValueError(f"num_heads {num_heads} is not a multiple of num_kv_heads {kv_heads}")
    head_dim = attn // num_heads
    sd[prefix + "self_attn.in_proj.weight"] = (attn + 2 * kv_heads * head_dim, d_model)
    sd[prefix + "self_attn.out_proj.weight"] = (d_model, attn)
    _layer_norm(sd, prefix + "norm1.", d_model)
    _layer_norm(sd, prefix + "norm2.", d_model)
    sd[prefix + "linear1.weight"] = (dim_feedforward, d_model)
    sd[prefix + "linear2.weight"] = (d_model, dim_feedforward)
    if layer_scale:
        sd[prefix + "layer_scale_1.scale"] = (d_model,)
        sd[prefix + "layer_scale_2.scale"] = (d_model,)


def flow_lm_tensors(config: Config, prefix: str = "flow_lm.") -> Shapes:
    """Keys and shapes of the flow LM (``FlowLMModel`` plus ``speaker_proj_weight``)."""
    f = config.flow_lm
    t = f.transformer
    lut = f.lookup_table
    ldim = config.mimi.quantizer.dimension
    d = t.d_model
    flow_type = f.flow.type
    if flow_type not in FLOW_TIME_CONDITIONS:
        raise ValueError(f"Unknown flow type: {flow_type}")
    sd: Shapes = {}
    # FlowLMModel's own parameters, then its buffers.
    sd[prefix + "bos_emb"] = (ldim,)
    if f.insert_bos_before_voice:
        sd[prefix + "bos_before_voice"] = (1, 1, d)
    sd[prefix + "speaker_proj_weight"] = (d, config.mimi.inner_dim or config.mimi.seanet.dimension)
    sd[prefix + "emb_std"] = (ldim,)
    sd[prefix + "emb_mean"] = (ldim,)
    # conditioner: LUTConditioner
    sd[prefix + "conditioner.embed.weight"] = (lut.n_bins + 1, lut.rank or lut.dim)
    if lut.rank is not None:
        sd[prefix + "conditioner.proj.weight"] = (lut.dim, lut.rank)
    # flow_net: SimpleMLPAdaLN(latent, flow.dim, latent, z_dim or d_model, flow.depth)
    w = f.flow.dim
    net = prefix + "flow_net."
    for j in range(FLOW_TIME_CONDITIONS[flow_type]):
        q = f"{net}time_embed.{j}."
        sd[q + "freqs"] = (_FREQ_EMBEDDING_SIZE // 2,)
        _linear(sd, q + "mlp.0.", _FREQ_EMBEDDING_SIZE, w)
        _linear(sd, q + "mlp.2.", w, w)
        sd[q + "mlp.3.alpha"] = (w,)
    _linear(sd, net + "cond_embed.", f.z_dim or d, w)
    _linear(sd, net + "input_proj.", ldim, w)
    for r in range(f.flow.depth):
        q = f"{net}res_blocks.{r}."
        _layer_norm(sd, q + "in_ln.", w)
        _linear(sd, q + "mlp.0.", w, w)
        _linear(sd, q + "mlp.2.", w, w)
        _linear(sd, q + "adaLN_modulation.1.", w, 3 * w)
    _linear(sd, net + "final_layer.linear.", w, ldim)
    _linear(sd, net + "final_layer.adaLN_modulation.1.", w, 2 * w)
    # backbone
    _linear(sd, prefix + "input_linear.", ldim, d, bias=False)
    ff = t.dim_feedforward or int(d * t.hidden_scale)
    for i in range(t.num_layers):
        _transformer_layer(
            sd,
            f"{prefix}transformer.layers.{i}.",
            d,
            t.num_heads,
            ff,
            layer_scale=False,
            attn_dim=t.attn_dim,
            num_kv_heads=t.num_kv_heads,
        )
    _layer_norm(sd, prefix + "out_norm.", d)
    if f.z_dim is not None:
        _linear(sd, prefix + "z_proj.", d, f.z_dim, bias=False)
    _linear(sd, prefix + "out_eos.", f.z_dim or d, 1)
    return sd


def _seanet_resblock(sd: Shapes, prefix: str, dim: int, kernel: int, compress: int) -> None:
    hidden = dim // compress
    _conv(sd, prefix + "block.1.", dim, hidden, kernel)
    _conv(sd, prefix + "block.3.", hidden, dim, 1)


def _seanet_encoder(sd: Shapes, prefix: str, s: SEANetConfig) -> None:
    nf = s.n_filters
    idx = 0
    _conv(sd, f"{prefix}model.{idx}.", s.channels, nf, s.kernel_size)
    idx += 1
    mult = 1
    for ratio in reversed(list(s.ratios)):
        for _ in range(s.n_residual_layers):
            _seanet_resblock(
                sd, f"{prefix}model.{idx}.", mult * nf, s.residual_kernel_size, s.compress
            )
            idx += 1
        idx += 1  # ELU
        _conv(sd, f"{prefix}model.{idx}.", mult * nf, mult * nf * 2, 2 * ratio)
        idx += 1
        mult *= 2
    idx += 1  # ELU
    _conv(sd, f"{prefix}model.{idx}.", mult * nf, s.dimension, s.last_kernel_size)


def _seanet_decoder(sd: Shapes, prefix: str, s: SEANetConfig) -> None:
    nf = s.n_filters
    mult = 2 ** len(s.ratios)
    idx = 0
    _conv(sd, f"{prefix}model.{idx}.", s.dimension, mult * nf, s.kernel_size)
    idx += 1
    for ratio in s.ratios:
        idx += 1  # ELU
        _convtr(sd, f"{prefix}model.{idx}.", mult * nf, mult * nf // 2, 2 * ratio)
        idx += 1
        for _ in range(s.n_residual_layers):
            _seanet_resblock(
                sd, f"{prefix}model.{idx}.", mult * nf // 2, s.residual_kernel_size, s.compress
            )
            idx += 1
        mult //= 2
    idx += 1  # ELU
    _conv(sd, f"{prefix}model.{idx}.", nf, s.channels, s.last_kernel_size)


def _projected_transformer(sd: Shapes, prefix: str, t: MimiTransformerConfig) -> None:
    for i in range(t.num_layers):
        _transformer_layer(
            sd,
            f"{prefix}transformer.layers.{i}.",
            t.d_model,
            t.num_heads,
            t.dim_feedforward,
            layer_scale=t.layer_scale is not None,
        )
    if t.d_model != t.input_dimension:
        sd[prefix + "input_proj.weight"] = (t.d_model, t.input_dimension)
    for j, out_dim in enumerate(t.output_dimensions):
        if out_dim != t.d_model:
            sd[f"{prefix}output_projs.{j}.weight"] = (out_dim, t.d_model)


def mimi_tensors(config: Config, prefix: str = "mimi.") -> Shapes:
    """Keys and shapes of the Mimi codec (``build_mimi(config.mimi)``)."""
    m = config.mimi
    enc = m.seanet
    dec = m.decoder_seanet or m.seanet
    sd: Shapes = {}
    _seanet_encoder(sd, prefix + "encoder.", enc)
    _seanet_decoder(sd, prefix + "decoder.", dec)
    _projected_transformer(sd, prefix + "encoder_transformer.", m.transformer)
    _projected_transformer(
        sd, prefix + "decoder_transformer.", m.decoder_transformer or m.transformer
    )
    sd[prefix + "quantizer.output_proj.weight"] = (
        m.quantizer.output_dimension,
        m.quantizer.dimension,
        1,
    )
    hop = math.prod(enc.ratios)
    encoder_frame_rate = m.sample_rate / hop
    if encoder_frame_rate != m.frame_rate:
        stride = encoder_frame_rate / m.frame_rate
        if stride != int(stride) or stride < 1:
            raise ValueError(f"Only integer downsampling strides are supported, got {stride}")
        stride = int(stride)
        # ConvDownsample1d(stride, dimension=encoder.dimension, out_dimension=inner_dim)
        _conv(
            sd,
            prefix + "downsample.conv.",
            enc.dimension,
            m.inner_dim or enc.dimension,
            2 * stride,
            bias=False,
        )
        # ConvTrUpsample1d(stride, dimension=decoder.dimension, in_dimension=outer_dim):
        # depthwise (groups = decoder.dimension).
        _convtr(
            sd,
            prefix + "upsample.convtr.",
            m.outer_dim or dec.dimension,
            dec.dimension,
            2 * stride,
            groups=dec.dimension,
            bias=False,
        )
    return sd


def expected_tensors(config: Config) -> dict[str, tuple[int, ...]]:
    """Every key and shape of the reference ``TTSModel.state_dict()`` for ``config``.

    ``config`` is a :class:`pocket_tts.config.Config` (or an object with the same attributes).
    Keys come in the reference's state-dict order: all ``flow_lm.*`` keys, then ``mimi.*``.
    """
    sd = flow_lm_tensors(config)
    sd.update(mimi_tensors(config))
    return sd


def parameter_count(config: Config, prefix: str = "") -> int:
    """Number of checkpoint values whose key starts with ``prefix`` (``freqs`` buffers excluded)."""
    return sum(
        math.prod(shape)
        for key, shape in expected_tensors(config).items()
        if key.startswith(prefix) and not key.endswith(".freqs")
    )
