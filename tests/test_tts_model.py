"""The drop-in TTSModel: whole-pipeline parity with the reference, stream == batch, EOS,
cancellation, state reuse, long text."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import REF_WAV, run_reference

from pocket_tts import TTSModel
from pocket_tts.voice import VoiceState

TWO_SENTENCES = "Hello world. This is the second sentence."


@pytest.fixture(scope="module")
def small(random_checkpoint):
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0)
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    return model, voice, yaml_path


def golden(tmp_path, yaml_path, *, seed, temp, frames=0, eos=1e9, frames_after_eos=None):
    out = tmp_path / "golden.npz"
    args = [
        yaml_path,
        REF_WAV,
        out,
        "--text",
        TWO_SENTENCES,
        "--seed",
        seed,
        "--temp",
        temp,
        "--eos-threshold",
        eos,
    ]
    if frames:
        args += ["--frames", frames]
    if frames_after_eos is not None:
        args += ["--frames-after-eos", frames_after_eos]
    run_reference("pipeline_golden.py", *args)
    return dict(np.load(out))


def ours(yaml_path, *, seed, temp, frames=0, eos=1e9, frames_after_eos=None):
    model = TTSModel.load_model(config=str(yaml_path), temp=temp, eos_threshold=eos)
    if frames:
        model._estimate_max_gen_len = lambda token_count: frames
    model.seed(seed)
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    audio = model.generate_audio(voice, TWO_SENTENCES, frames_after_eos=frames_after_eos)
    return audio, model


@pytest.mark.parametrize(
    "config,temp",
    [("english_2026-10", 0.3), ("english_2m_2026-10", 0.3), ("english_2m_2026-10", 0.0)],
)
def test_whole_pipeline_parity(config, temp, random_checkpoint, tmp_path) -> None:
    """Same checkpoint, same seed (our generator reproduces torch's), voice from ref.wav, EOS
    disabled, 60 frames: the audio matches sample by sample."""
    yaml_path, _ = random_checkpoint(config)
    want = golden(tmp_path, yaml_path, seed=7, temp=temp, frames=60)["audio"]
    got, _ = ours(yaml_path, seed=7, temp=temp, frames=60)
    assert got.shape == want.shape == (60 * 1920,)
    assert np.abs(got - want).max() <= 1e-3
    assert np.corrcoef(got, want)[0, 1] >= 0.9999


def test_eos_lands_on_the_same_frame(random_checkpoint, tmp_path) -> None:
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    free = golden(tmp_path, yaml_path, seed=3, temp=0.3, frames=60)
    logits = free["eos_logits"]
    # A threshold that the logits first cross well after frame 6, far from every logit.
    candidates = np.sort(logits[6:40])[::-1]
    gaps = candidates[:-1] - candidates[1:]
    k = int(np.argmax(gaps[2:]) + 2)
    threshold = float((candidates[k] + candidates[k + 1]) / 2)
    want = golden(tmp_path, yaml_path, seed=3, temp=0.3, eos=threshold, frames_after_eos=2)
    got, model = ours(yaml_path, seed=3, temp=0.3, eos=threshold, frames_after_eos=2)
    stats = model.last_chunk_stats
    assert stats["eos_step"] is not None and stats["eos_step"] >= 6
    assert stats["frames"] == stats["eos_step"] + 2
    assert got.shape == want["audio"].shape
    assert np.abs(got - want["audio"]).max() <= 1e-3


def test_stream_equals_batch_and_seed_resets(small) -> None:
    model, voice, _ = small
    chunks = [c.copy() for c in model.generate_audio_stream(voice, TWO_SENTENCES, seed=11)]
    assert all(len(c) % 1920 == 0 and c.dtype == np.float32 for c in chunks)
    batch = model.generate_audio(voice, TWO_SENTENCES, seed=11)
    assert np.array_equal(np.concatenate(chunks), batch)
    assert np.array_equal(model.generate_audio(voice, TWO_SENTENCES, seed=11), batch)
    assert not np.array_equal(model.generate_audio(voice, TWO_SENTENCES, seed=12), batch)


def test_frame_by_frame_decoding_changes_nothing(small) -> None:
    model, voice, _ = small
    batch = model.generate_audio(voice, TWO_SENTENCES, seed=2)
    model.max_decoder_frames_per_call = 1
    try:
        single = model.generate_audio(voice, TWO_SENTENCES, seed=2)
    finally:
        model.max_decoder_frames_per_call = 0
    assert np.array_equal(single, batch)


def test_fade_in_at_the_start_of_each_chunk(small) -> None:
    model, voice, _ = small
    audio = model.generate_audio(voice, "Hi.", seed=1)
    ramp = model._fade_in
    assert ramp[0] == 0.0 and ramp[-1] == 1.0 and len(ramp) == 120
    assert audio[0] == 0.0


def test_long_sentence_yields_many_chunks_as_they_are_decoded(small) -> None:
    model, voice, _ = small
    n = 0
    for chunk in model.generate_audio_stream(voice, "This is one long sentence " * 3, seed=0):
        assert len(chunk) >= 1920
        n += 1
    assert n > 1


def test_long_text_is_split_at_sentence_boundaries(small) -> None:
    model, voice, _ = small
    seen = []
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    for _ in model.generate_audio_stream(
        voice, text, max_tokens=20, seed=0, on_text_chunk=lambda i, n, t: seen.append((i, n, t))
    ):
        pass
    assert len(seen) > 2 and all(n == len(seen) for _, n, _ in seen)
    assert all(t.endswith(".") for _, _, t in seen)
    assert " ".join(t for _, _, t in seen).count("Sentence number") == 12


def test_eos_stops_with_frames_after_eos(small) -> None:
    model, voice, _ = small
    old = model.eos_threshold
    model.eos_threshold = -1e9  # EOS fires on the first frame where it is allowed (6)
    try:
        for extra in (0, 3):
            audio = model.generate_audio(voice, "Hello there.", frames_after_eos=extra, seed=0)
            assert model.last_chunk_stats["eos_step"] == 6
            assert len(audio) == (6 + extra) * 1920
    finally:
        model.eos_threshold = old


def test_cancel_mid_stream_leaves_no_thread(small) -> None:
    model, voice, _ = small
    stop = threading.Event()
    got = 0
    for chunk in model.generate_audio_stream(voice, "A long sentence " * 10, stop=stop, seed=0):
        got += len(chunk)
        stop.set()
    assert 0 < got < model.last_chunk_stats["max_gen_len"] * 1920
    assert not [t for t in threading.enumerate() if t.name == "pocket-tts-flow-lm"]


def test_abandoned_generator_stops_its_thread(small) -> None:
    model, voice, _ = small
    gen = model.generate_audio_stream(voice, "Some words " * 10, seed=0)
    next(gen)
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == "pocket-tts-flow-lm"]


def test_voice_state_is_reusable_and_copy_state_false_continues(small) -> None:
    model, voice, _ = small
    before = voice.copy()
    model.generate_audio(voice, "First.", seed=0)
    assert voice.offset == before.offset and np.array_equal(voice.kv, before.kv)
    mutable = voice.copy()
    model.generate_audio(mutable, "First.", seed=0, copy_state=False)
    assert mutable.offset > before.offset
    assert np.array_equal(mutable.kv[:, :, : before.offset], before.kv[:, :, : before.offset])


def test_voice_free_generation(small) -> None:
    model, _, _ = small
    audio = model.generate_audio(None, "No voice.", seed=0)
    assert audio.ndim == 1 and len(audio) > 0 and np.isfinite(audio).all()


def test_bad_inputs_are_clear_and_model_stays_usable(small) -> None:
    model, voice, yaml_path = small
    with pytest.raises(ValueError, match="empty"):
        model.generate_audio(voice, "   ")
    with pytest.raises(TypeError):
        model.generate_audio(voice, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_tokens"):
        model.generate_audio(voice, "Hi.", max_tokens=0)
    with pytest.raises(ValueError, match="frames_after_eos"):
        model.generate_audio(voice, "Hi.", frames_after_eos=-1)
    with pytest.raises(TypeError, match="model_state"):
        model.generate_audio({"not": "a state"}, "Hi.")  # type: ignore[arg-type]
    wrong = VoiceState(voice.kv[:, :, :, :, :16].copy(), voice.offset)
    with pytest.raises(ValueError):
        model.generate_audio(wrong, "Hi.")
    with pytest.raises(ValueError, match="both"):
        TTSModel.load_model(language="english", config=str(yaml_path))
    with pytest.raises(ValueError, match="yaml"):
        TTSModel.load_model(config="model.json")
    with pytest.raises(ValueError, match="Unknown language"):
        TTSModel.load_model(language="klingon")
    with pytest.raises(ValueError, match="dtype"):
        TTSModel.load_model(config=str(yaml_path), dtype="float64")
    with pytest.raises(ValueError, match="temp"):
        TTSModel.load_model(config=str(yaml_path), temp=float("nan"))
    with pytest.raises(ValueError, match="sampler_decode_steps"):
        TTSModel.load_model(config=str(yaml_path), sampler_decode_steps=0)
    with pytest.raises(ValueError, match="checkpoint"):
        TTSModel.load_model(config=str(yaml_path), checkpoint="x.pt")
    with pytest.raises(FileNotFoundError):
        TTSModel.load_model(config=str(yaml_path), weights="/nonexistent.safetensors")
    assert len(model.generate_audio(voice, "Still fine.", seed=0)) > 0
