"""Each C kernel against a float64 numpy twin, with an explicit error budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pocket_tts import _native as K

RNG = np.random.default_rng(1234)


def f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def test_layer_norm_affine_and_plain() -> None:
    x, w, b = f32(5, 512, scale=3.0) + 2.0, f32(512), f32(512)
    x64 = x.astype(np.float64)
    norm = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    assert np.abs(K.layer_norm(x, w, b) - (norm * w + b)).max() < 2e-5
    norm6 = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-6)
    assert np.abs(K.layer_norm(x, eps=1e-6) - norm6).max() < 2e-5


def test_rms_norm_uses_unbiased_variance_uncentred_x() -> None:
    x, a = f32(3, 64) + 1.0, f32(64)
    x64 = x.astype(np.float64)
    want = x64 * a / np.sqrt(1e-5 + x64.var(-1, ddof=1, keepdims=True))
    assert np.abs(K.rms_norm_unbiased(x, a) - want).max() < 1e-5


def test_activations() -> None:
    x = np.linspace(-12, 12, 4001).astype(np.float32)
    x64 = x.astype(np.float64)
    gelu = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    assert np.abs(K.gelu_tanh(x) - gelu).max() < 1e-5
    assert np.abs(K.silu(x) - x64 / (1 + np.exp(-x64))).max() < 1e-5
    assert np.abs(K.elu(x) - np.where(x64 > 0, x64, np.expm1(x64))).max() < 1e-6


def rope64(x: np.ndarray, pos0: int, max_period: float = 10000.0) -> np.ndarray:
    T, H, D = x.shape
    freqs = K.rope_freqs(D, max_period)  # torch's float32 values; checked against the reference
    pos = (np.arange(T, dtype=np.float32) + np.float32(pos0))[:, None, None]
    theta = (freqs.astype(np.float32) * pos).astype(np.float64)  # angles in float32, as torch
    re, im = x[..., 0::2].astype(np.float64), x[..., 1::2].astype(np.float64)
    out = np.empty(x.shape, np.float64)
    out[..., 0::2] = re * np.cos(theta) - im * np.sin(theta)
    out[..., 1::2] = re * np.sin(theta) + im * np.cos(theta)
    return out


@pytest.mark.parametrize("pos0", [0, 7, 3000])
def test_rope_interleaved_float32_angles(pos0: int) -> None:
    x = f32(5, 4, 64)
    assert np.abs(K.rope(x, pos0) - rope64(x, pos0)).max() < 5e-6


def attention64(q, keys, vals, positions, qpos):
    T, H, D = q.shape
    Hkv = keys.shape[1]
    out = np.zeros((T, H, D))
    for t in range(T):
        visible = positions <= qpos[t]
        for h in range(H):
            kh = keys[visible, h // (H // Hkv)].astype(np.float64)
            vh = vals[visible, h // (H // Hkv)].astype(np.float64)
            s = kh @ q[t, h].astype(np.float64) / math.sqrt(D)
            p = np.exp(s - s.max())
            out[t, h] = (p / p.sum()) @ vh
    return out.reshape(T, H * D)


@pytest.mark.parametrize("H,Hkv", [(4, 4), (6, 2), (3, 1)])
def test_attention_linear_cache_gqa(H: int, Hkv: int) -> None:
    D, cap, prior, T = 16, 40, 9, 6
    ck, cv = np.full((cap, Hkv, D), np.nan, np.float32), np.full((cap, Hkv, D), np.nan, np.float32)
    ck[:prior], cv[:prior] = f32(prior, Hkv, D), f32(prior, Hkv, D)
    q, k, v = f32(T, H, D), f32(T, Hkv, D), f32(T, Hkv, D)
    out, off = K.attention(q, k, v, ck, cv, prior)
    assert off == prior + T
    keys = np.concatenate([ck[:prior], k])
    vals = np.concatenate([cv[:prior], v])
    want = attention64(q, keys, vals, np.arange(prior + T), np.arange(prior, prior + T))
    assert np.abs(out - want).max() < 2e-6


def attention_calls(q, k, v, prior_k, prior_v, cap, sizes, threads=1):
    """Run q/k/v[T] through K.attention in calls of ``sizes`` rows on a cache ([cap, Hkv, D])
    holding ``prior`` positions (the rest NaN: never read); returns the concatenated outputs."""
    ck = np.full((cap, *k.shape[1:]), np.nan, np.float32)
    cv = ck.copy()
    off = len(prior_k)
    ck[:off], cv[:off] = prior_k, prior_v
    outs, s = [], 0
    for n in sizes:
        o, off = K.attention(q[s : s + n], k[s : s + n], v[s : s + n], ck, cv, off, threads=threads)
        outs.append(o)
        s += n
    assert s == len(q)
    return np.concatenate(outs)


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("prefix", [1, 13, 16])
def test_attention_shared_prefix_equals_one_cache(generic: bool, prefix: int) -> None:
    """A cache whose first slots are a separate read-only block (a voice prompt shared by many
    streams) gives bit for bit the output of one contiguous cache, whether the key blocks of 8
    straddle the boundary or not, for prefills and steps; the block is never written."""
    H, Hkv, D, prior, cap = 4, 2, 64, 21, 40
    pk, pv = f32(prior, Hkv, D), f32(prior, Hkv, D)
    q, k, v = f32(9, H, D), f32(9, Hkv, D), f32(9, Hkv, D)
    K.force_generic(generic)
    try:
        want = attention_calls(q, k, v, pk, pv, cap, [6, 1, 1, 1])
        shared_k, shared_v = pk[:prefix].copy(), pv[:prefix].copy()
        frozen = shared_k.copy(), shared_v.copy()
        ck = np.full((cap - prefix, Hkv, D), np.nan, np.float32)
        cv = ck.copy()
        ck[: prior - prefix], cv[: prior - prefix] = pk[prefix:], pv[prefix:]
        outs, off, a = [], prior, 0
        for n in (6, 1, 1, 1):
            o, off = K.attention(
                q[a : a + n],
                k[a : a + n],
                v[a : a + n],
                ck,
                cv,
                off,
                prefix_k=shared_k,
                prefix_v=shared_v,
            )
            outs.append(o)
            a += n
        with pytest.raises(ValueError, match="overflow"):  # a write into the prefix
            K.attention(
                q[:1], k[:1], v[:1], ck, cv, prefix - 1, prefix_k=shared_k, prefix_v=shared_v
            )
    finally:
        K.force_generic(False)
    assert np.array_equal(np.concatenate(outs), want)
    assert np.array_equal(shared_k, frozen[0]) and np.array_equal(shared_v, frozen[1])


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("H,Hkv,D", [(16, 16, 64), (6, 2, 72), (4, 4, 24)])
def test_attention_flow_lm_shapes_vs_float64(generic: bool, H: int, Hkv: int, D: int) -> None:
    """The flow LM's prefill (13 rows after 127 cached positions) and steps, against float64.
    Budget: scores are D-term fp32 dot products (|s| < ~5 here, error ~1e-6), exp and the
    1/sum normalisation add a few ulp of relative error per weight, and the P.V sum over ~140
    keys of unit-normal values adds ~1e-7 per term: 4e-6 absolute on outputs below 1 (seen:
    <= 7e-7 AVX2, <= 2e-6 for the generic path's sequential sums). D = 72 exercises the 8-wide
    column tail of P.V, D = 24 heads narrower than one 64-column block."""
    prior, T, cap = 127, 13, 160
    pk, pv = f32(prior, Hkv, D), f32(prior, Hkv, D)
    q, k, v = f32(T + 3, H, D), f32(T + 3, Hkv, D), f32(T + 3, Hkv, D)
    keys, vals = np.concatenate([pk, k]), np.concatenate([pv, v])
    want = attention64(q, keys, vals, np.arange(prior + T + 3), np.arange(prior, prior + T + 3))
    K.force_generic(generic)
    try:
        got = attention_calls(q, k, v, pk, pv, cap, [T, 1, 1, 1])
    finally:
        K.force_generic(False)
    assert np.abs(got - want).max() < 4e-6


@pytest.mark.parametrize("generic", [False, True])
def test_attention_rows_independent_of_call_split(generic: bool) -> None:
    """A row's output is bit-identical whether it shares its call with 12 other rows, is cut
    into uneven calls, or runs alone (frame by frame == batch)."""
    H, Hkv, D, prior, T = 8, 4, 64, 61, 21
    pk, pv = f32(prior, Hkv, D), f32(prior, Hkv, D)
    q, k, v = f32(T, H, D), f32(T, Hkv, D), f32(T, Hkv, D)
    K.force_generic(generic)
    try:
        whole = attention_calls(q, k, v, pk, pv, 96, [T])
        for sizes in ([1] * T, [13, 8], [3, 9, 1, 8]):
            assert np.array_equal(attention_calls(q, k, v, pk, pv, 96, sizes), whole)
    finally:
        K.force_generic(False)


@pytest.mark.parametrize("Hkv", [16, 4])
def test_attention_two_threads_is_bit_identical(Hkv: int) -> None:
    """threads=2 splits a large prefill's heads over two threads (13 rows x 16 heads over ~150
    keys of 64 is above the threshold): each (row, head) is computed exactly as on one."""
    H, D, prior, T = 16, 64, 140, 13
    pk, pv = f32(prior, Hkv, D), f32(prior, Hkv, D)
    q, k, v = f32(T, H, D), f32(T, Hkv, D), f32(T, Hkv, D)
    one = attention_calls(q, k, v, pk, pv, 160, [T])
    two = attention_calls(q, k, v, pk, pv, 160, [T], threads=2)
    assert np.array_equal(one, two)
    assert np.array_equal(attention_calls(q, k, v, pk, pv, 160, [1] * T), two)


def test_attention_overflow_is_an_error() -> None:
    ck = np.zeros((3, 1, 8), np.float32)
    with pytest.raises(ValueError, match="overflow"):
        K.attention(f32(2, 1, 8), f32(2, 1, 8), f32(2, 1, 8), ck, ck.copy(), 2)


def stored_weights(w: np.ndarray, dtype: str):
    """(stored matrix in ``dtype``, its exact float64 value, int8 scales zero-padded to whole
    panels or None)."""
    from pocket_tts.checkpoint.loader import quantize_rows_int8
    from pocket_tts.checkpoint.safetensors import float32_to_bfloat16_bits

    if dtype == "float32":
        return w, w.astype(np.float64), None
    if dtype == "float16":
        stored = w.astype(np.float16).view(np.uint16)
        return stored, stored.view(np.float16).astype(np.float64), None
    if dtype == "bfloat16":
        stored = float32_to_bfloat16_bits(w)
        return stored, (stored.astype(np.uint32) << 16).view(np.float32).astype(np.float64), None
    stored, scale = quantize_rows_int8(w)
    padded = np.zeros(-(-w.shape[0] // 16) * 16, np.float32)
    padded[: len(scale)] = scale
    return stored, stored.astype(np.float64) * scale[:, None], padded


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("T", [1, 3, 6, 13, 40])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8"])
def test_gemm_packed_weights(dtype: str, T: int, generic: bool) -> None:
    """y = x W^T with W packed in panels of any storage dtype, against float64 on the *stored*
    (rounded) weights: only the fp32 accumulation error remains."""
    from pocket_tts.checkpoint.loader import pack_panels

    out_f, in_f = 70, 137  # not multiples of 16: padded panel, odd k
    w, x = f32(out_f, in_f), f32(T, in_f)
    stored, exact, scale = stored_weights(w, dtype)
    if dtype == "int8":
        assert np.abs(exact - w).max() <= np.abs(w).max(axis=1).max() / 127 / 2 + 1e-6
    K.force_generic(generic)
    try:
        got = K.gemm(x, pack_panels(stored), dtype, out_f, scale)
        # Calls of two rows: each row is computed the same way whatever shares its call (a
        # one-row call takes the latency-hiding GEMV path and is checked against float64).
        pairs = [K.gemm(x[t : t + 2], pack_panels(stored), dtype, out_f, scale) for t in range(T)]
        single = K.gemm(x[:1], pack_panels(stored), dtype, out_f, scale)
    finally:
        K.force_generic(False)
    want = x.astype(np.float64) @ exact.T
    assert rel_err(got, want) < 2e-6
    assert rel_err(single, want[:1]) < 2e-6
    if T > 1:
        assert np.array_equal(np.concatenate([p[:1] for p in pairs[:-1]] + [pairs[-2][1:]]), got)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_gemm_k_blocks_and_row_blocks_keep_rows_independent(dtype: str) -> None:
    """k longer than one k-block of every dtype and more rows than a row block: each row is
    bit-identical whatever call, tile or row block it lands in."""
    from pocket_tts.checkpoint.loader import pack_panels

    out_f, in_f, T = 40, 1100, 150
    w, x = f32(out_f, in_f), f32(T, in_f)
    stored, exact, scale = stored_weights(w, dtype)
    packed = pack_panels(stored)
    got = K.gemm(x, packed, dtype, out_f, scale)
    assert rel_err(got, x.astype(np.float64) @ exact.T) < 1e-5
    for n in (2, 7):
        parts = [K.gemm(x[t : t + n], packed, dtype, out_f, scale) for t in range(0, T, n)]
        assert np.array_equal(np.concatenate(parts), got)


@pytest.mark.parametrize("in_f", [3, 19, 192, 1024, 1025])
def test_gemm_one_output_column(in_f: int) -> None:
    """One output column (the SEANet's last conv) takes a dot-product path up to 1024 inputs
    (the panel path beyond): within float32 accumulation error of float64, bias included, and
    each row bit-identical whatever call it lands in (one-row calls too, unlike the panel
    path's GEMV)."""
    w, x, b = f32(1, in_f), f32(50, in_f), f32(1)
    packed = K.pack_nt(w)
    got = K.gemm_packed(x, packed, 1, b)
    want = x.astype(np.float64) @ w.astype(np.float64).T + b
    assert rel_err(got, want) < 2e-6
    for n in (1, 7) if in_f <= 1024 else (5,):  # no one-row call left over
        parts = [K.gemm_packed(x[t : t + n], packed, 1, b) for t in range(0, 50, n)]
        assert np.array_equal(np.concatenate(parts), got)


def test_pack_nt_matches_numpy_panels() -> None:
    from pocket_tts.checkpoint.loader import pack_panels

    w = f32(37, 11)
    assert np.array_equal(K.pack_nt(w), pack_panels(w).reshape(-1))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gemm_two_threads_is_bit_identical(dtype: str) -> None:
    from pocket_tts.checkpoint.loader import pack_panels

    w, x = f32(1000, 512), f32(20, 512)
    stored = w if dtype == "float32" else w.astype(np.float16).view(np.uint16)
    packed = pack_panels(stored)
    one = K.gemm(x, packed, dtype, 1000, threads=1)
    two = K.gemm(x, packed, dtype, 1000, threads=2)
    assert np.array_equal(one, two)
    # Few output panels and many rows (a SEANet conv) split by rows instead: 101 = 50 + 51.
    w, x = f32(40, 600), f32(101, 600)
    stored = w if dtype == "float32" else w.astype(np.float16).view(np.uint16)
    packed = pack_panels(stored)
    one = K.gemm(x, packed, dtype, 40, threads=1)
    assert np.array_equal(K.gemm(x, packed, dtype, 40, threads=2), one)
    assert np.array_equal(K.gemm(x[:50], packed, dtype, 40), one[:50])


def _edge_values() -> np.ndarray:
    """float32 values at every rounding boundary of fp16 / bf16 / int8."""
    specials = [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        65504.0,
        65519.0,
        65520.0,
        1e6,
        -1e6,
        6.1035156e-05,
        6.0975552e-05,
        5.9604645e-08,
        2.9802322e-08,
        2.9802326e-08,
        1e-45,
        3e-39,
        1.0009766,
        1.0004883,
        1.0014648,
        3.389e38,
        -3.4e38,
    ]
    rng = np.random.default_rng(7)
    scales = np.float32(10.0) ** rng.integers(-9, 6, 2000).astype(np.float32)
    rand = (rng.standard_normal(2000).astype(np.float32) * scales).astype(np.float32)
    ties = (np.arange(1, 200, dtype=np.float32) + np.float32(0.5)) / np.float32(1024.0)
    return np.concatenate([np.array(specials, np.float32), rand, ties, -ties])


def test_half_conversions_match_numpy() -> None:
    """The packer's fp16 rounding is numpy's astype(float16) bit for bit (RNE, subnormals,
    overflow to inf, NaN payloads); bf16 is the reference conversion."""
    from pocket_tts import _native
    from pocket_tts.checkpoint.safetensors import float32_to_bfloat16_bits

    x = _edge_values()
    with np.errstate(over="ignore"):
        want16 = x.astype(np.float16).view(np.uint16)
    assert np.array_equal(_native.to_half_bits(x, "float16"), want16)
    assert np.array_equal(_native.to_half_bits(x, "bfloat16"), float32_to_bfloat16_bits(x))
    out = np.zeros(len(x), np.uint16)
    assert _native.to_half_bits(x, "float16", out) is out and np.array_equal(out, want16)
    with pytest.raises(ValueError, match="length"):
        _native.to_half_bits(x, "float16", np.zeros(len(x) - 1, np.uint16))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8"])
@pytest.mark.parametrize("shape", [(70, 137), (32, 5), (1, 3)])
def test_pack_weights_matches_numpy_twin(dtype: str, shape: tuple[int, int]) -> None:
    """C packing at load == numpy conversion + pack_panels, bit for bit."""
    from pocket_tts import _native
    from pocket_tts.checkpoint.loader import pack_panels

    w = f32(*shape)
    w[0, 0] = 0.0
    if shape[0] > 2:
        w[2] = 0.0  # an all-zero row: int8 scale 1
    panels = -(-shape[0] // 16)
    np_dtype = {"float32": np.float32, "int8": np.int8}.get(dtype, np.uint16)
    dst = np.full((panels, shape[1], 16), 7, np_dtype)
    scale = np.full(panels * 16, 7, np.float32) if dtype == "int8" else None
    _native.pack_weights(w, dst, scale, dtype)
    stored, _, want_scale = stored_weights(w, dtype)
    if dtype == "int8":  # the real scales, then zeros over the padded columns
        assert np.array_equal(scale, want_scale)
    assert np.array_equal(dst, pack_panels(stored))
    with pytest.raises(ValueError, match="dst must be"):
        _native.pack_weights(w, dst[:, :-1], scale, dtype)
    with pytest.raises(ValueError, match="unknown"):
        _native.pack_weights(w, dst, scale, "float64")


@pytest.mark.skipif(
    K.isa() != "avx512",
    reason="needs an AVX-512 CPU (the AVX2 kernels are tested on every x86-64 run)",
)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8"])
def test_avx512_gemm_is_the_avx2_gemm_bit_for_bit(dtype: str) -> None:
    """The AVX-512 kernels run each output's FMA chain in the AVX2 kernels' order: every row
    count (one-row GEMV, 1..12-row tiles, several tiles, more than a row block) and k (one
    block, several, odd) gives the same bits on both."""
    from pocket_tts.checkpoint.loader import pack_panels

    for out_f, in_f in ((70, 137), (40, 1100), (512, 64)):
        w = f32(out_f, in_f)
        stored, _, scale = stored_weights(w, dtype)
        packed = pack_panels(stored)
        for T in (1, 2, 3, 5, 6, 7, 12, 13, 16, 25, 40, 150):
            x = f32(T, in_f)
            got = {}
            for level in ("avx2", "avx512"):
                K.cap_isa(level)
                try:
                    got[level] = K.gemm(x, packed, dtype, out_f, scale)
                finally:
                    K.cap_isa("avx512")
            assert got["avx2"].tobytes() == got["avx512"].tobytes(), (out_f, in_f, T)


def test_cap_isa_rejects_unknown_levels_and_restores() -> None:
    before = K.isa()
    with pytest.raises(ValueError, match="unknown instruction set"):
        K.cap_isa("sse9")
    K.cap_isa("generic")
    try:
        assert K.isa() == "generic" and not K.has_avx2()
    finally:
        K.cap_isa("avx512")
    assert K.isa() == before
