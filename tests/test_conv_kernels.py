"""The Mimi C kernels (csrc/conv.c, seanet.c) against float64 numpy twins of the reference math.

Each twin is written the reference's way (channels-major, ``torch.nn.Conv1d`` /
``ConvTranspose1d`` semantics, the streaming ``previous`` / ``partial`` state updates of
``modules/conv.py``) in float64; the kernels run time-major in float32 over irregular chunkings.

Error budget: a float32 dot product of n terms computed in any order is within
``n * eps32 * sum|terms|`` of the exact value (eps32 = 2^-24 per operation); rounding errors
of BLAS kernels add up like a random walk in practice, so we allow
``BUDGET * sqrt(n) * eps32 * sum|terms| + eps32 * |y|``: with BUDGET = 8 this is far above the
typical error and far below anything a wrong tap, offset or state would produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from pocket_tts import _native
from pocket_tts.mimi import pack_conv1d, pack_convtr1d, pack_depthwise_convtr1d

EPS32 = 2.0**-24
BUDGET = 8.0


def chunks_of(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Split time-major x[T, C] into consecutive chunks of the given row counts."""
    assert sum(sizes) == x.shape[0]
    out, t = [], 0
    for n in sizes:
        out.append(x[t : t + n])
        t += n
    return out


def check(got: np.ndarray, want: np.ndarray, mag: np.ndarray, n: int) -> None:
    """|got - want| within the budget, elementwise (mag = sum of |terms| per output)."""
    bound = BUDGET * np.sqrt(n) * EPS32 * mag + EPS32 * np.abs(want) + 1e-30
    err = np.abs(got.astype(np.float64) - want)
    worst = float((err / bound).max())
    assert worst <= 1.0, f"error {float(err.max()):.3g} exceeds the budget (ratio {worst:.3g})"


# ---------------------------------------------------------------------------------------------
# float64 twins (channels-major [C, T], like the reference)
# ---------------------------------------------------------------------------------------------


def conv1d_twin(x, w, b, stride, dilation, replicate, chunk_sizes):
    """StreamingConv1d over chunks: previous = last K_eff - S inputs (zeros, or the first
    sample repeated with replicate padding); returns (y, sum|terms|), both [C_out, T/S]."""
    c_out, c_in, k = w.shape
    keff = (k - 1) * dilation + 1
    tp = keff - stride
    prev = np.zeros((c_in, tp))
    first = True
    ys, mags = [], []
    t0 = 0
    for n in chunk_sizes:
        xc = x[:, t0 : t0 + n]
        t0 += n
        if tp and replicate and first:
            prev[:] = xc[:, :1]
        first = False
        xx = np.concatenate([prev, xc], axis=1)
        nout = (xx.shape[1] - keff) // stride + 1
        y = np.zeros((c_out, nout))
        mag = np.zeros((c_out, nout))
        for t in range(nout):
            win = xx[:, t * stride : t * stride + keff : dilation]  # [c_in, k]
            y[:, t] = np.einsum("ock,ck->o", w, win)
            mag[:, t] = np.einsum("ock,ck->o", np.abs(w), np.abs(win))
        if b is not None:
            y += b[:, None]
            mag += np.abs(b)[:, None]
        if tp:
            prev = xx[:, -tp:]
        ys.append(y)
        mags.append(mag)
    return np.concatenate(ys, axis=1), np.concatenate(mags, axis=1)


def convtr1d_twin(x, w, b, stride, chunk_sizes, groups=1):
    """StreamingConvTranspose1d over chunks with the reference's `partial` state (bias
    counted once, tail kept for the next call); returns (y, sum|terms|), [C_out, T*S]."""
    c_in, c_out_g, k = w.shape
    c_out = c_out_g * groups
    pt = k - stride
    partial = np.zeros((c_out, pt))
    partial_mag = np.zeros((c_out, pt))
    ys, mags = [], []
    t0 = 0
    for n in chunk_sizes:
        xc = x[:, t0 : t0 + n]
        t0 += n
        full = np.zeros((c_out, (n - 1) * stride + k))
        fmag = np.zeros_like(full)
        for t in range(n):
            if groups == 1:
                contrib = np.einsum("c,cok->ok", xc[:, t], w)
                cmag = np.einsum("c,cok->ok", np.abs(xc[:, t]), np.abs(w))
            else:  # depthwise
                contrib = xc[:, t, None] * w[:, 0, :]
                cmag = np.abs(contrib)
            full[:, t * stride : t * stride + k] += contrib
            fmag[:, t * stride : t * stride + k] += cmag
        if b is not None:
            full += b[:, None]
            fmag += np.abs(b)[:, None]
        if pt:
            full[:, :pt] += partial
            fmag[:, :pt] += partial_mag
            partial = full[:, -pt:] - (b[:, None] if b is not None else 0)
            partial_mag = fmag[:, -pt:] - (np.abs(b)[:, None] if b is not None else 0)
            full, fmag = full[:, :-pt], fmag[:, :-pt]
        ys.append(full)
        mags.append(fmag)
    return np.concatenate(ys, axis=1), np.concatenate(mags, axis=1)


def elu64(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["avx2", "generic"])
def isa(request):
    if request.param == "avx2" and not _native.has_avx2():
        pytest.skip("AVX2 kernels not selected (no AVX2/FMA/F16C, or POCKET_TTS_FORCE_GENERIC)")
    _native.force_generic(request.param == "generic")
    yield request.param
    _native.force_generic(False)


CONV_CASES = [
    # c_in, c_out, K, S, dilation, replicate, bias, chunk sizes (input rows)
    (1, 8, 7, 1, 1, False, True, [5, 1, 17, 9]),  # SEANet first conv (k7, one channel)
    (16, 8, 3, 1, 1, False, True, [4, 4, 1, 30]),  # residual k3
    (16, 8, 3, 1, 2, False, True, [3, 11, 7]),  # dilated residual
    (12, 6, 1, 1, 1, False, True, [6, 10]),  # 1x1 (GEMM straight on the input)
    (8, 16, 8, 4, 1, False, True, [4, 12, 8, 16]),  # encoder downsampling conv K=2S
    (10, 20, 10, 5, 1, False, True, [5, 25, 10]),
    (5, 3, 4, 4, 1, False, True, [8, 4, 12]),  # K == S: no history, no im2col
    (16, 4, 32, 16, 1, True, False, [16, 48, 32]),  # ConvDownsample1d: replicate, no bias
    (16, 4, 32, 16, 1, True, False, [48, 16]),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv1d_streaming_matches_twin(case) -> None:
    c_in, c_out, k, s, dil, rep, bias, sizes = case
    rng = np.random.default_rng([c_in, c_out, k, s, dil, int(rep), int(bias), *sizes])
    w = rng.standard_normal((c_out, c_in, k)).astype(np.float32) / np.sqrt(c_in * k)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    x = rng.standard_normal((sum(sizes), c_in)).astype(np.float32)
    x[0] += 2.0  # make replicate padding visible
    spec = pack_conv1d(w, b, stride=s, dilation=dil, replicate=rep)
    got = np.concatenate(_native.conv1d_stream(spec, chunks_of(x, sizes)))
    want, mag = conv1d_twin(
        x.T.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        s,
        dil,
        rep,
        sizes,
    )
    assert got.shape == want.T.shape
    check(got, want.T, mag.T, c_in * k)


def test_conv1d_chunking_is_only_rounding() -> None:
    """The same stream cut differently gives the same output (to rounding)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 8, 3)).astype(np.float32)
    spec = pack_conv1d(w, np.zeros(6, np.float32))
    x = rng.standard_normal((40, 8)).astype(np.float32)
    a = np.concatenate(_native.conv1d_stream(spec, [x]))
    b = np.concatenate(_native.conv1d_stream(spec, chunks_of(x, [1] * 40)))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


CONVTR_CASES = [
    # c_in, c_out, K, S, bias, chunk sizes
    (8, 4, 12, 6, True, [1, 3, 2, 5]),  # SEANet decoder x6
    (6, 3, 10, 5, True, [4, 1, 1]),  # x5
    (4, 2, 8, 4, False, [2, 7]),  # x4, no bias
    (5, 3, 7, 3, True, [3, 2, 4]),  # K not a multiple of S (3 taps, last one partial)
    (4, 4, 3, 3, True, [2, 2]),  # K == S: no history
]


@pytest.mark.parametrize("case", CONVTR_CASES)
def test_convtr1d_streaming_matches_twin(case) -> None:
    c_in, c_out, k, s, bias, sizes = case
    rng = np.random.default_rng([c_in, c_out, k, s, int(bias), *sizes])
    w = rng.standard_normal((c_in, c_out, k)).astype(np.float32) / np.sqrt(2 * c_in)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    x = rng.standard_normal((sum(sizes), c_in)).astype(np.float32)
    got = np.concatenate(
        _native.convtr1d_stream(pack_convtr1d(w, b, stride=s), chunks_of(x, sizes))
    )
    want, mag = convtr1d_twin(
        x.T.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        s,
        sizes,
    )
    assert got.shape == (sum(sizes) * s, c_out)
    check(got, want.T, mag.T, c_in * -(-k // s))


def test_float16_convs_match_twin(isa) -> None:
    """Convs stored as float16 (the large codec convs of compact models): the kernel widens
    each weight exactly and accumulates in float32, so against a float64 twin of the
    fp16-rounded weights the float32 budget holds; against the float32 weights the error is
    the weights' rounding (2^-11 relative)."""
    rng = np.random.default_rng(16)
    c_in, c_out, k, s, sizes = 24, 40, 8, 4, [8, 4, 20]
    w = rng.standard_normal((c_out, c_in, k)).astype(np.float32) / np.sqrt(c_in * k)
    b = rng.standard_normal(c_out).astype(np.float32)
    x = rng.standard_normal((sum(sizes), c_in)).astype(np.float32)
    w16 = w.astype(np.float16).astype(np.float64)
    spec = dict(pack_conv1d(w, b, stride=s), storage="float16")
    got = np.concatenate(_native.conv1d_stream(spec, chunks_of(x, sizes)))
    want, mag = conv1d_twin(x.T.astype(np.float64), w16, b.astype(np.float64), s, 1, False, sizes)
    check(got, want.T, mag.T, c_in * k)
    want32, _ = conv1d_twin(x.T.astype(np.float64), w.astype(np.float64), b, s, 1, False, sizes)
    assert not np.array_equal(want32, want)  # the rounding is real...
    assert float(np.abs(got - want32.T).max()) <= 2.0**-10 * float(mag.max())  # ...and small

    wt = rng.standard_normal((c_in, c_out, 12)).astype(np.float32) / np.sqrt(2 * c_in)
    spec = dict(pack_convtr1d(wt, b, stride=6), storage="float16")
    got = np.concatenate(_native.convtr1d_stream(spec, chunks_of(x, sizes)))
    want, mag = convtr1d_twin(
        x.T.astype(np.float64), wt.astype(np.float16).astype(np.float64), b, 6, sizes
    )
    check(got, want.T, mag.T, c_in * 2)
    with pytest.raises(ValueError, match="float32 or float16"):
        _native.conv1d_stream(dict(pack_conv1d(w, b), storage="int8"), [x])


@pytest.mark.parametrize(
    "C,k,s,bias,sizes",
    [(16, 32, 16, False, [1, 1, 3, 1, 2]), (8, 5, 2, True, [3, 1, 4]), (4, 4, 4, False, [2, 1])],
)
def test_depthwise_convtr_matches_twin(C, k, s, bias, sizes) -> None:
    rng = np.random.default_rng(C * 100 + k)
    w = rng.standard_normal((C, 1, k)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32) if bias else None
    x = rng.standard_normal((sum(sizes), C)).astype(np.float32)
    got = np.concatenate(
        _native.depthwise_stream(pack_depthwise_convtr1d(w, s), b, k, s, chunks_of(x, sizes))
    )
    want, mag = convtr1d_twin(
        x.T.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        s,
        sizes,
        groups=C,
    )
    check(got, want.T, mag.T, 2)


def test_depthwise_upsampler_is_bit_exact_float32() -> None:
    """Each upsampled sample is x[t] w[j] + x[t-1] w[S+j] in float32, the reference's order."""
    rng = np.random.default_rng(3)
    C, k, s = 8, 32, 16
    w = rng.standard_normal((C, 1, k)).astype(np.float32)
    x = rng.standard_normal((4, C)).astype(np.float32)
    got = np.concatenate(
        _native.depthwise_stream(pack_depthwise_convtr1d(w, s), None, k, s, chunks_of(x, [1] * 4))
    )
    prev = np.zeros(C, np.float32)
    for t in range(4):
        for j in range(s):
            want = x[t] * w[:, 0, j] + prev * w[:, 0, s + j]
            assert np.array_equal(got[t * s + j], want)
        prev = x[t]


def test_elu_matches_twin(isa) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.standard_normal(10007).astype(np.float32) * 3,
            np.linspace(-30, 5, 4001, dtype=np.float32),
            np.float32([-1e-30, -1e-8, -0.34657, -0.34658, 0.0, -0.0, 1e-30, 100.0, -100.0]),
        ]
    )
    got = _native.elu(x)
    want = elu64(x.astype(np.float64))
    # Within 2 ulp of the exact value (libm expm1f is within 1).
    assert np.all(np.abs(got - want) <= 2 * EPS32 * np.abs(want) + 1e-45)
    special = np.float32([np.nan, np.inf, -np.inf])
    s = _native.elu(special)
    assert np.isnan(s[0]) and s[1] == np.inf and s[2] == -1.0
    # The result of an element depends only on its value (vector body and tail agree).
    for n in (1, 7, 8, 9, 23):
        assert np.array_equal(_native.elu(x[:n]), got[:n])
        assert np.array_equal(_native.elu(x[5 : 5 + n]), got[5 : 5 + n])


@pytest.mark.parametrize("dilation", [1, 3])
def test_resblock_matches_twin(isa, dilation: int) -> None:
    rng = np.random.default_rng(dilation)
    dim, hid, sizes = 12, 6, [5, 1, 9, 16]
    w1 = rng.standard_normal((hid, dim, 3)).astype(np.float32) / np.sqrt(3 * dim)
    b1 = rng.standard_normal(hid).astype(np.float32) * 0.1
    w2 = rng.standard_normal((dim, hid, 1)).astype(np.float32) / np.sqrt(hid)
    b2 = rng.standard_normal(dim).astype(np.float32) * 0.1
    x = rng.standard_normal((sum(sizes), dim)).astype(np.float32)
    got = np.concatenate(
        _native.resblock_stream(
            pack_conv1d(w1, b1, dilation=dilation), pack_conv1d(w2, b2), chunks_of(x, sizes)
        )
    )
    x64 = x.T.astype(np.float64)
    h, mag1 = conv1d_twin(
        elu64(x64), w1.astype(np.float64), b1.astype(np.float64), 1, dilation, False, sizes
    )
    v, mag2 = conv1d_twin(
        elu64(h), w2.astype(np.float64), b2.astype(np.float64), 1, 1, False, sizes
    )
    want = x64 + v
    # Error of the hidden layer propagates through conv2: budget on |w2| |h| with mag1 folded in.
    mag = np.abs(x64) + np.einsum("oc,ct->ot", np.abs(w2[:, :, 0]), mag1) + mag2
    check(got, want.T, mag.T, 3 * dim + hid)


def gelu64(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def test_mimi_gelu_matches_twin(isa) -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            rng.standard_normal(10007).astype(np.float32) * 3,
            np.linspace(-12, 12, 4001, dtype=np.float32),
            np.float32([0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 30.0, -30.0, 1e4, -1e4]),
        ]
    )
    got = _native.gelu_tanh(x).astype(np.float64)
    x64 = x.astype(np.float64)
    want = gelu64(x64)
    # u is formed in float32 (a few roundings relative to |u|), then tanh within a few ulp;
    # 0.5 x (1 + t) turns an error in t into 0.5 |x| times it.
    u = np.abs(0.7978845608028654 * (x64 + 0.044715 * x64**3))
    bound = 8 * EPS32 * (np.abs(want) + 0.5 * np.abs(x64) * (1.0 + u * (1 - np.tanh(u) ** 2)))
    assert np.all(np.abs(got - want) <= bound + 1e-45)
    assert _native.gelu_tanh(np.float32([np.nan]))[0] != _native.gelu_tanh(np.float32([np.nan]))[0]
    for n in (1, 7, 8, 9, 23):  # an element's result depends only on its value
        assert np.array_equal(_native.gelu_tanh(x[3 : 3 + n]), got[3 : 3 + n].astype(np.float32))


def window_attention64(q, k, v, context):
    """float64 twin: query p attends positions [max(0, p - context + 1), p] (GQA groups);
    also returns a per-output error budget."""
    T, H, D = q.shape
    group = H // k.shape[1]
    out = np.zeros((T, H, D))
    bound = np.zeros((T, H, D))
    for p in range(T):
        lo = max(0, p - context + 1)
        for h in range(H):
            kk, vv = k[lo : p + 1, h // group], v[lo : p + 1, h // group]
            terms = np.abs(kk * q[p, h]).sum(axis=1) / np.sqrt(D)
            s = kk @ q[p, h] / np.sqrt(D)
            w = np.exp(s - s.max())
            w /= w.sum()
            out[p, h] = w @ vv
            ds = BUDGET * np.sqrt(D) * EPS32 * terms + EPS32 * np.abs(s)  # score errors
            bound[p, h] = (
                BUDGET * np.sqrt(len(w)) * EPS32 * (w @ np.abs(vv))
                + 2 * (w * ds) @ np.abs(vv - out[p, h])
                + EPS32 * np.abs(out[p, h])
            )
    return out.reshape(T, H * D), bound.reshape(T, H * D)


@pytest.mark.parametrize("H,Hkv,D", [(4, 4, 64), (4, 2, 16), (2, 1, 12)])
def test_window_attention_matches_twin(isa, H: int, Hkv: int, D: int) -> None:
    """Context window over irregular chunks, long enough for the window buffer to slide to the
    front several times; threads and chunking change nothing, bit for bit."""
    rng = np.random.default_rng(H * 100 + D)
    context, sizes = 37, [5, 1, 17, 9, 40, 3, 40, 40, 1, 33] * 6
    T = sum(sizes)
    q = rng.standard_normal((T, H, D)).astype(np.float32)
    k = rng.standard_normal((T, Hkv, D)).astype(np.float32)
    v = rng.standard_normal((T, Hkv, D)).astype(np.float32)
    want, bound = window_attention64(
        q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), context
    )
    chunks = list(zip(chunks_of(q, sizes), chunks_of(k, sizes), chunks_of(v, sizes), strict=True))
    got = np.concatenate(_native.window_attention_stream(context, chunks))
    assert np.all(np.abs(got - want) <= bound), float((np.abs(got - want) / bound).max())
    two = np.concatenate(_native.window_attention_stream(context, chunks, threads=2))
    assert np.array_equal(two, got)
    ones = list(
        zip(chunks_of(q, [1] * T), chunks_of(k, [1] * T), chunks_of(v, [1] * T), strict=True)
    )
    assert np.array_equal(np.concatenate(_native.window_attention_stream(context, ones)), got)
