"""Voice states: cloning from a wav with reference parity, and the voice file format both ways.

The reference (tools/reference/mimi_golden.py) builds the voice state of ref.wav / jfk_16k.wav
with ``get_state_for_audio_prompt`` and exports it; it also reads back the files we export.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import JFK_WAV, REF_WAV
from mimi_reference import golden, models, reference_load_voice

from pocket_tts.audio.prompt import load_prompt_audio
from pocket_tts.checkpoint.safetensors import read_safetensors, write_safetensors
from pocket_tts.voice import (
    VoiceState,
    VoiceStateError,
    export_model_state,
    import_model_state,
    voice_state_from_audio,
)

CONFIGS = ["english_2026-10", "english_2m_2026-10"]
WAVS = {"ref": REF_WAV, "jfk": JFK_WAV}
TOL = 1e-4


@pytest.fixture(scope="module", params=CONFIGS)
def ckpt(request, random_checkpoint):
    return random_checkpoint(request.param)


def close(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs difference, relative to the magnitude where values are large."""
    return float(np.abs(got - want).max()) / max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("wav", list(WAVS))
def test_voice_state_from_audio_parity(ckpt, wav: str) -> None:
    mimi, lm = models(*ckpt)
    g, _ = golden(ckpt[0], WAVS[wav])
    # The prompt preparation (audio/prompt.py) reproduces the reference's samples.
    assert float(np.abs(load_prompt_audio(WAVS[wav]) - g["prompt_audio"]).max()) <= 1e-6
    voice = voice_state_from_audio(lm, mimi, WAVS[wav])
    n = g["latents"].shape[0] + 1  # BOS row before the voice
    assert voice.offset == n == int(g["voice_offset"][0])
    assert (
        voice.kv.shape == g["voice_kv"].shape == (lm.num_layers, 2, n, lm.num_kv_heads, lm.head_dim)
    )
    assert voice.noise_draws == 1
    assert close(voice.kv, g["voice_kv"]) <= TOL
    # An array is taken as 24 kHz audio (end_on_pause applied again, so only shapes agree).
    from_array = voice_state_from_audio(lm, mimi, g["prompt_audio"])
    assert from_array.noise_draws == 1 and from_array.kv.shape[2] == from_array.offset > 1


def test_reference_voice_file_loads_here(ckpt) -> None:
    _, lm = models(*ckpt)
    g, ref_voice = golden(ckpt[0], REF_WAV)
    voice = import_model_state(ref_voice, lm)
    assert voice.offset == int(g["voice_offset"][0])
    assert voice.noise_draws == 0
    assert np.array_equal(voice.kv, g["voice_kv"])


def test_our_voice_file_loads_in_reference(ckpt, tmp_path) -> None:
    mimi, lm = models(*ckpt)
    voice = voice_state_from_audio(lm, mimi, JFK_WAV)
    path = tmp_path / "voice.safetensors"
    export_model_state(voice, path)
    ref = reference_load_voice(ckpt[0], path)
    assert list(ref["voice_offset"]) == [voice.offset] * lm.num_layers
    assert list(ref["voice_pad"]) == [0] * lm.num_layers
    assert np.array_equal(ref["voice_kv"], voice.kv)


def test_export_layout_and_round_trip(ckpt, tmp_path) -> None:
    _, lm = models(*ckpt)
    rng = np.random.default_rng(0)
    kv = rng.standard_normal((lm.num_layers, 2, 9, lm.num_kv_heads, lm.head_dim)).astype(np.float32)
    path = tmp_path / "v.safetensors"
    export_model_state(VoiceState(kv, 9), path)
    t = read_safetensors(path)
    assert len(t) == 3 * lm.num_layers
    c = t["transformer.layers.0.self_attn/cache"]
    assert c.dtype == np.float32 and c.shape == (2, 1, 9, lm.num_kv_heads, lm.head_dim)
    assert t["transformer.layers.0.self_attn/offset"].dtype == np.int64
    assert list(t["transformer.layers.0.self_attn/offset"]) == [9]
    assert list(t["transformer.layers.0.self_attn/pad"]) == [0]
    back = import_model_state(path, lm)
    assert back.offset == 9 and np.array_equal(back.kv, kv)
    # Only the used prefix is exported; a copy is independent.
    export_model_state(VoiceState(kv, 4), path)
    assert import_model_state(path).kv.shape[2] == 4
    cp = back.copy()
    cp.kv[0, 0, 0, 0, 0] += 1
    assert cp.kv[0, 0, 0, 0, 0] != back.kv[0, 0, 0, 0, 0]
    # A flow-LM stream state starting from the voice.
    st = back.to_flow_state(lm, 20)
    assert st.offset == 9 and np.array_equal(st.kv[:, :, :9], kv)
    with pytest.raises(ValueError, match="capacity"):
        back.to_flow_state(lm, 5)


def _write_voice(path, kv, offset=None, pad=0, legacy=False, extra=None):
    tensors = {}
    for i in range(kv.shape[0]):
        name = f"transformer.layers.{i}.self_attn"
        tensors[f"{name}/cache"] = np.ascontiguousarray(kv[i][:, None])
        if legacy:
            tensors[f"{name}/current_end"] = np.zeros(kv.shape[2] if offset is None else offset)
        else:
            tensors[f"{name}/offset"] = np.array([kv.shape[2] if offset is None else offset])
            tensors[f"{name}/pad"] = np.array([pad])
    tensors.update(extra or {})
    write_safetensors(path, tensors)


def test_import_legacy_and_longer_cache(random_checkpoint, tmp_path) -> None:
    _, lm = models(*random_checkpoint("english_2m_2026-10"))
    rng = np.random.default_rng(1)
    kv = rng.standard_normal((lm.num_layers, 2, 6, lm.num_kv_heads, lm.head_dim)).astype(np.float32)
    p = tmp_path / "legacy.safetensors"
    _write_voice(p, kv, offset=4, legacy=True)
    v = import_model_state(p, lm)
    assert v.offset == 4 and np.array_equal(v.kv, kv[:, :, :4])
    # A cache longer than the offset (e.g. saved mid-generation): NaN past the offset is fine.
    kv2 = kv.copy()
    kv2[:, :, 5:] = np.nan
    _write_voice(p, kv2, offset=5)
    v = import_model_state(p, lm)
    assert v.offset == 5 and np.array_equal(v.kv, kv[:, :, :5])


def test_flow_state_from_voice_prefix(random_checkpoint) -> None:
    """A stream state built from a voice holds the voice's KV in its first positions, NaN
    (never written) after them, and its write offset at the prefix."""
    _, lm = models(*random_checkpoint("english_2m_2026-10"))
    rng = np.random.default_rng(2)
    kv = rng.standard_normal((lm.num_layers, 2, 7, lm.num_kv_heads, lm.head_dim)).astype(np.float32)
    voice = VoiceState(kv, 7)
    state = voice.to_flow_state(lm, 12)
    assert state.offset == 7
    assert np.array_equal(state.kv[:, :, :7], kv)
    assert np.isnan(state.kv[:, :, 7:]).all()
    with pytest.raises(ValueError, match="capacity"):
        voice.to_flow_state(lm, 6)
    with pytest.raises(ValueError, match="capacity 3 < prefix 7"):
        lm.new_state(3, prefix=kv)


def test_bad_voice_files(random_checkpoint, tmp_path) -> None:
    _, lm = models(*random_checkpoint("english_2m_2026-10"))
    _, big = models(*random_checkpoint("english_2026-10"))
    rng = np.random.default_rng(2)
    kv = rng.standard_normal((lm.num_layers, 2, 6, lm.num_kv_heads, lm.head_dim)).astype(np.float32)
    p = tmp_path / "v.safetensors"

    with pytest.raises(FileNotFoundError):
        import_model_state(tmp_path / "missing.safetensors")
    p.write_bytes(b"\x00" * 5)
    with pytest.raises(VoiceStateError, match="not a valid voice-state file"):
        import_model_state(p)
    _write_voice(p, kv)
    p.write_bytes(p.read_bytes()[:-10])  # truncated data
    with pytest.raises(VoiceStateError, match="not a valid voice-state file"):
        import_model_state(p)
    p.write_bytes(b"\xff" * 64)  # garbage header length
    with pytest.raises(VoiceStateError, match="not a valid voice-state file"):
        import_model_state(p)

    # Made for another model config: layers / KV heads / head width differ.
    _write_voice(p, kv)
    assert import_model_state(p, lm).offset == 6
    with pytest.raises(VoiceStateError, match="another model config"):
        import_model_state(p, big)
    with pytest.raises(VoiceStateError, match="another model config"):
        VoiceState(kv, 6).validate(big)

    nan = kv.copy()
    nan[1, 0, 2, 0, 0] = np.nan
    _write_voice(p, nan)
    with pytest.raises(VoiceStateError, match="NaN"):
        import_model_state(p, lm)
    _write_voice(p, kv, offset=7)
    with pytest.raises(VoiceStateError, match="outside the cache length"):
        import_model_state(p, lm)
    _write_voice(p, kv, pad=1)
    with pytest.raises(VoiceStateError, match="padded"):
        import_model_state(p, lm)
    _write_voice(p, kv, extra={"something/else": np.zeros(2, np.float32)})
    with pytest.raises(VoiceStateError, match="unexpected entry"):
        import_model_state(p, lm)
    _write_voice(p, kv[:1], extra={"transformer.layers.2.self_attn/cache": kv[2][:, None]})
    with pytest.raises(VoiceStateError, match="missing layers"):
        import_model_state(p, lm)
    write_safetensors(p, {"transformer.layers.0.self_attn/cache": kv[0][:, None]})
    with pytest.raises(VoiceStateError, match="offset"):
        import_model_state(p, lm)
    write_safetensors(p, {"transformer.layers.0.self_attn/offset": np.array([1])})
    with pytest.raises(VoiceStateError, match="no 'cache'"):
        import_model_state(p, lm)
    write_safetensors(p, {"transformer.layers.0.self_attn/cache": kv[0]})
    with pytest.raises(VoiceStateError, match="not \\[2, 1, N, H_kv, D\\]"):
        import_model_state(p, lm)
    with pytest.raises(VoiceStateError, match="outside"):
        export_model_state(VoiceState(kv, 9), p)
    with pytest.raises(TypeError):
        export_model_state(kv, p)  # type: ignore[arg-type]


def test_prefill_in_blocks_is_one_pass_bit_for_bit(ckpt) -> None:
    """A voice prompt prefilled in blocks (so that Ctrl-C or stop answer within a block) gives
    the bits of one pass, whatever the block size; never a block of one row among several."""
    mimi, lm = models(*ckpt)
    cond = lm.voice_conditioning(mimi.encode(load_prompt_audio(REF_WAV)))
    states = []
    for rows in (len(cond), 32, 5, 2, len(cond) - 1):
        st = lm.new_state(len(cond), max_prefill=len(cond))
        assert lm.prefill(st, cond, block_rows=rows)
        states.append(st.kv.copy())
    for kv in states[1:]:
        assert np.array_equal(kv, states[0])


def test_voice_encoding_stops_on_stop_and_ctrl_c(random_checkpoint, capsys) -> None:
    """Cloning a long prompt stops early on stop (VoiceEncodingCancelled: raised only if the
    work was cut short) or on a KeyboardInterrupt in the calling thread, leaving no encoder
    thread behind; the model clones again afterwards. The delays are printed, not asserted
    (noisy machines)."""
    import _thread
    import threading
    import time

    from pocket_tts import TTSModel
    from pocket_tts.voice import VoiceEncodingCancelled

    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), seed=0)
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(60 * 24000)).astype(np.float32)  # 1 min
    delays = []
    for how in ("stop", "ctrl-c"):
        stop = threading.Event()
        fire = stop.set if how == "stop" else _thread.interrupt_main
        timer = threading.Timer(0.3, fire)
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(VoiceEncodingCancelled if how == "stop" else KeyboardInterrupt):
            model.get_state_for_audio_prompt(long, stop=stop)
        delays.append(time.perf_counter() - t0 - 0.3)
        timer.join()
        assert not [
            t for t in threading.enumerate() if t.name == "pocket-tts-encode" and t.is_alive()
        ]
    t0 = time.perf_counter()
    assert model.get_state_for_audio_prompt(long).offset > 60 * 12  # the whole prompt
    whole = time.perf_counter() - t0
    with capsys.disabled():
        print(
            f"\n[cancel] 1 min prompt: whole {whole:.2f} s; stopped {delays[0] * 1000:.0f} ms "
            f"after stop, {delays[1] * 1000:.0f} ms after Ctrl-C"
        )
