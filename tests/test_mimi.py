"""Mimi codec: parity with the reference on random checkpoints, streaming invariants, memory.

Reference data (tools/reference/mimi_golden.py, see tests/mimi_reference.py): encoder latents of
the prompt audio as ``get_state_for_audio_prompt`` prepares it, and the audio of 30 frames of
seeded latents decoded frame by frame as the decode worker does (de-normalised, one streaming
state, ``increment_steps(16)`` per frame), before and after the 120-sample fade-in. Both
decoder transformer ring buffers wrap within those 30 frames (context 250 = 15.6 frames, 50 for
the 2m decoder).
"""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from conftest import JFK_WAV, REF_WAV
from mimi_reference import FRAMES, golden, models

CONFIGS = ["english_2026-10", "english_2m_2026-10"]
WAVS = {"ref": REF_WAV, "jfk": JFK_WAV}
AUDIO_TOL = 1e-4  # max abs difference on audio samples
LATENT_TOL = 1e-4


@pytest.fixture(scope="module", params=CONFIGS)
def ckpt(request, random_checkpoint):
    return random_checkpoint(request.param)


@pytest.fixture(scope="module")
def mimi(ckpt):
    return models(*ckpt)[0]


@pytest.mark.parametrize("wav", list(WAVS))
def test_encoder_parity(ckpt, mimi, wav: str) -> None:
    g, _ = golden(ckpt[0], WAVS[wav])
    lat = mimi.encode(g["prompt_audio"])
    n = -(-g["prompt_audio"].shape[0] // mimi.frame_size)
    assert lat.shape == g["latents"].shape == (n, mimi.inner_dim)
    assert lat.dtype == np.float32
    err = float(np.abs(lat - g["latents"]).max())
    assert err <= LATENT_TOL, err


def test_decoder_parity(ckpt, mimi) -> None:
    g, _ = golden(ckpt[0], REF_WAV)
    z = g["z"]
    assert z.shape[0] == FRAMES >= 25
    state = mimi.new_decoder_state()
    out = np.concatenate([mimi.decode(state, z[f : f + 1]) for f in range(FRAMES)])
    assert out.shape == g["audio_raw"].shape == (FRAMES * 1920,)
    err = float(np.abs(out - g["audio_raw"]).max())
    assert err <= AUDIO_TOL, err
    # The fade-in the decode worker applies to a chunk's first 120 samples.
    faded = out.copy()
    faded[:120] *= np.linspace(0, 1, 120, dtype=np.float32)
    assert float(np.abs(faded - g["audio"]).max()) <= AUDIO_TOL
    assert state.frames == FRAMES
    assert state.offsets == [FRAMES * mimi.steps_per_frame] * len(state.offsets)


def _seanet_convs(seanet: dict) -> list[dict]:
    convs = [seanet["first"], seanet["last"]]
    for stage in seanet["stages"]:
        convs += [stage[k] for k in ("up", "down") if k in stage]
        convs += [c for pair in stage["res"] for c in pair]
    return convs


def test_large_convs_follow_codec_storage(ckpt) -> None:
    """In compact models the SEANet convs with >= 2^18 weights (the low-rate ones, most of the
    convs' bytes) are stored as float16; the small high-rate ones and the one-channel output
    conv stay float32; float32 models store every conv as float32."""
    from pocket_tts.checkpoint.layout import StageTensors
    from pocket_tts.checkpoint.loader import load_weights
    from pocket_tts.config import load_config
    from pocket_tts.mimi import _specs

    yaml_path, weights_path = ckpt
    config = load_config(yaml_path)
    for dtype, storage in (("float32", "float32"), ("float16", "float16"), ("int8", "float16")):
        tensors = StageTensors(config, "mimi", load_weights(config, weights_path, dtype), dtype)
        dec, enc = _specs(config, tensors)
        convs = _seanet_convs(dec["seanet"]) + _seanet_convs(enc["seanet"]) + [enc["down"]]
        big = [c for c in convs if c["w"].size >= 1 << 18 and c["c_out"] > 1]
        assert big and len(big) < len(convs)
        for c in convs:
            want = storage if any(c is b for b in big) else "float32"
            assert c["storage"] == want
        if storage == "float16":
            share = sum(c["w"].size for c in big) / sum(c["w"].size for c in convs)
            assert share > 0.8, share


def test_float16_codec_storage(ckpt) -> None:
    """Compact models keep the Mimi transformers' matrices and the large SEANet convs in
    float16 (their storage class): transformer matrices packed at load time or packed from
    float32 by Mimi itself, the same bits; decoded audio and encoder latents stay close to the
    reference's float32 ones (budget: 1e-3 of the signal's peak; fp16 rounds each weight by at
    most 2^-11 relative)."""
    from pocket_tts.checkpoint.layout import tensor_table
    from pocket_tts.checkpoint.loader import load_weights, unpack_panels
    from pocket_tts.config import load_config
    from pocket_tts.mimi import Mimi

    yaml_path, weights_path = ckpt
    config = load_config(yaml_path)
    loaded = Mimi(config, load_weights(config, weights_path, dtype="float16"), "float16")
    packed = {e.key for e in tensor_table(config) if e.storage.packed}

    def unpacked() -> dict:  # float32 [out, in] matrices, as a caller's own dict holds them
        w = load_weights(config, weights_path)
        return {k: unpack_panels(v, v.shape[0] * 16) if k in packed else v for k, v in w.items()}

    packed_here = Mimi(config, unpacked(), dtype="float16")
    with pytest.raises(ValueError, match="unknown weight dtype 'float64'"):
        Mimi(config, unpacked(), dtype="float64")
    with pytest.raises(ValueError, match="float16 panels"):  # float32 panels for fp16 storage
        Mimi(config, load_weights(config, weights_path), dtype="float16")
    g, _ = golden(yaml_path, REF_WAV)
    outs = []
    for m in (loaded, packed_here):
        state = m.new_decoder_state()
        outs.append(np.concatenate([m.decode(state, g["z"][f : f + 1]) for f in range(FRAMES)]))
    assert np.array_equal(outs[0], outs[1])
    peak = float(np.abs(g["audio_raw"]).max())
    err = float(np.abs(outs[0] - g["audio_raw"]).max())
    assert err <= 1e-3 * peak, (err, peak)
    lat = loaded.encode(g["prompt_audio"])
    lat_err = float(np.abs(lat - g["latents"]).max())
    assert lat_err <= 1e-3 * float(np.abs(g["latents"]).max()), lat_err


def test_denormalize_matches_reference(ckpt, mimi) -> None:
    _, lm = models(*ckpt)
    g, _ = golden(ckpt[0], REF_WAV)
    assert np.array_equal(mimi.denormalize(g["norm_latents"], lm.emb_mean, lm.emb_std), g["z"])


def test_frame_by_frame_equals_batch_bit_for_bit(ckpt, mimi) -> None:
    rng = np.random.default_rng(7)
    z = rng.standard_normal((24, mimi.ldim)).astype(np.float32)
    one = mimi.new_decoder_state()
    frames = np.concatenate([mimi.decode(one, z[f : f + 1]) for f in range(len(z))])
    batch = mimi.decode(mimi.new_decoder_state(), z)
    assert np.array_equal(frames, batch)
    # Irregular groups, into slices of a preallocated buffer (as the generator does).
    state = mimi.new_decoder_state()
    out = np.empty(len(z) * mimi.frame_size, np.float32)
    a = 0
    for n in (3, 1, 7, 2, 5, 6):
        mimi.decode(state, z[a : a + n], out[a * mimi.frame_size : (a + n) * mimi.frame_size])
        a += n
    assert a == len(z)
    assert np.array_equal(out, batch)
    # reset() restarts the stream exactly.
    state.reset()
    assert state.frames == 0
    assert np.array_equal(mimi.decode(state, z), batch)
    # Two threads (the generator decodes the first frame on both cores): same audio.
    two = mimi.new_decoder_state()
    mixed = [mimi.decode(two, z[:2], threads=2), mimi.decode(two, z[2:])]
    assert np.array_equal(np.concatenate(mixed), batch)
    # Shared products, a second thread helping (as the flow-LM thread does for the first
    # frame): same audio.
    from pocket_tts import _native

    shared = mimi.new_decoder_state()
    done = np.zeros(1, np.int32)
    helper = threading.Thread(target=_native.help_until, args=(done, 1))
    helper.start()
    try:
        first = mimi.decode(shared, z[:2], threads=_native.SHARED)
    finally:
        _native.progress_store(done, 1)
        helper.join()
    assert np.array_equal(np.concatenate([first, mimi.decode(shared, z[2:])]), batch)


def test_states_sharing_one_scratch_decode_as_alone(mimi) -> None:
    """States made without a scratch of their own, decoded interleaved with one lent scratch
    (as the engine's worker threads do), give each stream the audio of a state that owns its
    scratch; such a state refuses to decode without one."""
    rng = np.random.default_rng(11)
    zs = [rng.standard_normal((9, mimi.ldim)).astype(np.float32) for _ in range(3)]
    alone = [mimi.decode(mimi.new_decoder_state(), z) for z in zs]
    lean = [mimi.new_decoder_state(own_scratch=False) for _ in zs]
    owned = mimi.new_decoder_state()
    assert lean[0].nbytes < owned.nbytes and lean[0].scratch_arr is None
    scratch = mimi.decoder_scratch()
    got: list[list[np.ndarray]] = [[], [], []]
    for f in range(9):
        for i in (2, 0, 1):
            got[i].append(mimi.decode(lean[i], zs[i][f : f + 1], scratch=scratch))
    for i in range(3):
        assert np.array_equal(np.concatenate(got[i]), alone[i])
    with pytest.raises(ValueError, match="no scratch of its own"):
        mimi.decode(lean[0], zs[0][:1])
    with pytest.raises(ValueError, match="decoder_scratch"):
        mimi.decode(lean[0], zs[0][:1], scratch=np.zeros(8, np.float32))
    # An owning state lent another scratch goes back to its own afterwards: same audio.
    mimi.decode(owned, zs[1][:4], scratch=scratch)
    assert np.array_equal(
        np.concatenate([alone[1][: 4 * mimi.frame_size], mimi.decode(owned, zs[1][4:])]),
        alone[1],
    )


def test_max_frames_per_call(mimi) -> None:
    state = mimi.new_decoder_state(max_frames_per_call=2)
    z = np.zeros((3, mimi.ldim), np.float32)
    mimi.decode(state, z[:2])
    with pytest.raises(ValueError, match="allows 2"):
        mimi.decode(state, z)
    with pytest.raises(ValueError):
        mimi.new_decoder_state(max_frames_per_call=0)


def test_bad_inputs(mimi) -> None:
    state = mimi.new_decoder_state()
    z = np.zeros((2, mimi.ldim), np.float32)
    bad = z.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mimi.decode(state, bad)
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        mimi.decode(state, bad)
    assert state.frames == 0  # nothing was decoded
    with pytest.raises(ValueError, match=r"latents must be \[n, 32\]"):
        mimi.decode(state, np.zeros((2, 31), np.float32))
    with pytest.raises(ValueError, match="out must"):
        mimi.decode(state, z, np.empty(100, np.float32))
    with pytest.raises(ValueError, match="out must"):
        mimi.decode(state, z, np.empty(2 * mimi.frame_size, np.float64))
    with pytest.raises(ValueError, match="empty"):
        mimi.encode(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        mimi.encode(np.full(100, np.nan, np.float32))
    with pytest.raises(ValueError, match="mono"):
        mimi.encode(np.zeros((2, 100), np.float32))


def test_encode_lengths(mimi) -> None:
    """N = ceil(T / 1920), right-padded with zeros; [1, T] input accepted."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1920 * 3 + 5).astype(np.float32) * 0.1
    lat = mimi.encode(x)
    assert lat.shape == (4, mimi.inner_dim)
    padded = np.zeros(1920 * 4, np.float32)
    padded[: x.size] = x
    assert np.array_equal(mimi.encode(padded), lat)
    assert np.array_equal(mimi.encode(x[None]), lat)
    assert mimi.encode(x[:10]).shape == (1, mimi.inner_dim)


def test_encoder_chunking_only_rounding(mimi, monkeypatch) -> None:
    """The streaming chunked encoder equals one pass over the whole prompt (to rounding)."""
    import pocket_tts.mimi as mimi_mod

    rng = np.random.default_rng(1)
    x = rng.standard_normal(1920 * 21).astype(np.float32) * 0.1
    a = mimi.encode(x)
    monkeypatch.setattr(mimi_mod, "ENCODE_CHUNK_FRAMES", 1000)
    b = mimi.encode(x)
    monkeypatch.setattr(mimi_mod, "ENCODE_CHUNK_FRAMES", 1)
    c = mimi.encode(x)
    assert float(np.abs(a - b).max()) <= 1e-5 and float(np.abs(a - c).max()) <= 1e-5


@pytest.mark.parametrize("frames", [1, 8, 9, 21])
def test_encoder_two_threads_bit_identical(mimi, frames: int) -> None:
    """The two-thread encoder (SEANet one chunk ahead of the transformer, which helps with the
    SEANet's products while it waits) gives the one-thread latents bit for bit, whatever the
    number of chunks (one, exactly one full, one and a bit, several)."""
    rng = np.random.default_rng(frames)
    x = rng.standard_normal(1920 * frames).astype(np.float32) * 0.1
    one = mimi.kernel.encode(x, 8, 1)
    two = mimi.kernel.encode(x, 8, 2)
    assert one.shape == (frames, mimi.inner_dim)
    assert np.array_equal(one, two)
    assert np.array_equal(mimi.kernel.encode(x, 8, 2), two)  # the helper slot is reusable


def test_ring_buffer_decoder_constant_memory(random_checkpoint) -> None:
    """2000 frames through one state: the KV rings wrap over and over, the state's buffers
    never move or grow, and no Python-visible allocation accumulates."""
    mimi = models(*random_checkpoint("english_2m_2026-10"))[0]
    state = mimi.new_decoder_state()
    addresses, nbytes = state.buffer_addresses(), state.nbytes
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2000, mimi.ldim)).astype(np.float32)
    out = np.empty(mimi.frame_size, np.float32)
    for f in range(100):
        mimi.decode(state, z[f : f + 1], out)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        peak0 = tracemalloc.get_traced_memory()[1]
        for f in range(100, 2000):
            mimi.decode(state, z[f : f + 1], out)
            assert np.isfinite(out).all()
        after = tracemalloc.take_snapshot()
        peak1 = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, growth
    assert peak1 - peak0 < 256 * 1024
    assert state.buffer_addresses() == addresses and state.nbytes == nbytes
    assert state.frames == 2000
    assert state.offsets == [2000 * mimi.steps_per_frame] * len(state.offsets)
    # Bit-identical to the same 2000 frames decoded in one call.
    again = mimi.new_decoder_state()
    tail = mimi.decode(again, z)[-mimi.frame_size :]
    assert np.array_equal(tail, out)


@pytest.mark.parametrize("name", ["english_2026-01", "english_18m_2026-10", "english_7m_2026-10"])
def test_other_architectures(name: str) -> None:
    """english_2026-01 (512-wide latents from the encoder) and the 18m/7m decoders (d 128,
    12 layers, context 50) build and run; streaming invariants hold."""
    from pocket_tts.checkpoint.layout import tensor_table
    from pocket_tts.config import load_config
    from pocket_tts.mimi import Mimi
    from pocket_tts.testing import config_path, random_weights

    config = load_config(config_path(name))
    keys = {e.key for e in tensor_table(config) if e.consumer.stage == "mimi"}
    weights = {k: v for k, v in random_weights(config, 0).items() if k in keys}
    mimi = Mimi(config, weights)
    assert mimi.inner_dim == (config.mimi.inner_dim or config.mimi.seanet.dimension)
    rng = np.random.default_rng(0)
    lat = mimi.encode(rng.standard_normal(1920 * 5 + 7).astype(np.float32) * 0.1)
    assert lat.shape == (6, mimi.inner_dim) and np.isfinite(lat).all()
    z = rng.standard_normal((6, mimi.ldim)).astype(np.float32)
    state = mimi.new_decoder_state()
    frames = np.concatenate([mimi.decode(state, z[f : f + 1]) for f in range(6)])
    assert np.isfinite(frames).all()
    assert np.array_equal(frames, mimi.decode(mimi.new_decoder_state(), z))
