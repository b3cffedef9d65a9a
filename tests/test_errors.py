"""Clear errors for misuse the reference answers with internals (issue 14, item 3): each names
the cause and the fix, and leaves the model usable."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
from conftest import REF_WAV

from pocket_tts import TTSModel, export_model_state
from pocket_tts.voice import VoiceStateError


@pytest.fixture(scope="module")
def model(random_checkpoint) -> TTSModel:
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    m = TTSModel.load_model(config=str(yaml_path), seed=0)
    m.eos_threshold = -1e9  # EOS at once: short generations
    return m


def _still_works(model: TTSModel) -> None:
    assert len(model.generate_audio(None, "Still fine.", seed=0)) > 0


def test_lone_surrogate_in_text(model) -> None:
    text = "Hello \udcff world."  # what bytes.decode(errors="surrogateescape") leaves
    with pytest.raises(ValueError, match=r"lone surrogate U\+DCFF at index 6.*errors='replace'"):
        model.generate_audio(None, text)
    with pytest.raises(ValueError, match="lone surrogate"):
        model.tokenizer.encode(text)
    _still_works(model)


def test_none_as_a_voice(model) -> None:
    with pytest.raises(TypeError, match=r"got NoneType \(to generate without a voice, pass"):
        model.get_state_for_audio_prompt(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got float"):
        model.get_state_for_audio_prompt(1.5)  # type: ignore[arg-type]
    _still_works(model)


def test_wav_named_safetensors(model, tmp_path) -> None:
    fake = tmp_path / "voice.safetensors"
    shutil.copy(REF_WAV, fake)
    with pytest.raises(VoiceStateError, match=r"this is a WAV audio file, not a safetensors file"):
        model.get_state_for_audio_prompt(str(fake))
    fake.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(VoiceStateError, match="zip archive"):
        model.get_state_for_audio_prompt(str(fake))
    _still_works(model)


def test_seeds_as_torch_takes_them(model) -> None:
    """Negative seeds are torch's two's complement (-1 is 2**64 - 1); outside torch's range, or
    a float (which torch truncates silently), is a clear error."""
    a = model.generate_audio(None, "Seeds.", seed=-1)
    b = model.generate_audio(None, "Seeds.", seed=2**64 - 1)
    c = model.generate_audio(None, "Seeds.", seed=2**64 - 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(
        model.generate_audio(None, "Seeds.", seed=np.int64(7)),
        model.generate_audio(None, "Seeds.", seed=7),
    )
    with pytest.raises(ValueError, match=r"outside \[-2\*\*63, 2\*\*64 - 1\]"):
        model.generate_audio(None, "Seeds.", seed=2**70)
    with pytest.raises(ValueError, match="outside"):
        model.generate_audio(None, "Seeds.", seed=-(2**63) - 1)
    with pytest.raises(TypeError, match="seed must be an int.*float 1.5"):
        model.generate_audio(None, "Seeds.", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        model.seed("3")  # type: ignore[arg-type]
    model.seed(-5)
    _still_works(model)


def test_seed_checked_before_loading(random_checkpoint) -> None:
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    with pytest.raises(TypeError, match="seed must be an int"):
        TTSModel.load_model(config=str(yaml_path), seed=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "attr,value,says",
    [
        ("temp", -1.0, "temp must be a finite number >= 0, got -1.0"),
        ("temp", float("nan"), "temp must be a finite number >= 0, got nan"),
        ("temp", "hot", "temp must be a finite number"),
        ("noise_clamp", 0.0, "noise_clamp must be a finite number > 0 or None"),
        ("eos_threshold", float("nan"), "eos_threshold must be a number"),
        ("sampler_decode_steps", 0, "sampler_decode_steps must be an int >= 1"),
    ],
)
def test_bad_sampling_attributes(model, attr, value, says) -> None:
    old = getattr(model, attr)
    setattr(model, attr, value)
    try:
        with pytest.raises(ValueError, match="model attribute: " + says.replace("(", r"\(")):
            model.generate_audio(None, "Attributes.")
    finally:
        setattr(model, attr, old)
    _still_works(model)


def test_export_onto_a_directory_or_a_missing_folder(model, tmp_path) -> None:
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    with pytest.raises(IsADirectoryError, match="is a directory: give a file name"):
        export_model_state(voice, tmp_path)
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        export_model_state(voice, tmp_path / "nope" / "v.safetensors")
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_exported_files_follow_the_umask(model, tmp_path) -> None:
    """A voice exported for a service account is readable by it as the umask allows (tempfile
    alone makes every file 0600)."""
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    old = os.umask(0o022)
    try:
        export_model_state(voice, tmp_path / "v.safetensors")
        os.umask(0o077)
        export_model_state(voice, tmp_path / "private.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "v.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.safetensors").stat().st_mode & 0o777 == 0o600


def test_no_missing_eos_warning_when_eos_was_reached(model, caplog) -> None:
    """EOS on the chunk's last frames (its frames after EOS cut by the length limit) is not
    'maximum generation length reached without EOS'."""
    real = model._estimate_max_gen_len
    model._estimate_max_gen_len = lambda tokens: 7  # EOS is allowed from frame 6
    try:
        with caplog.at_level(logging.WARNING, logger="pocket_tts"):
            model.generate_audio(None, "Short.", seed=0)
        assert model.last_chunk_stats["eos_step"] is not None
        assert "without EOS" not in caplog.text
        old = model.eos_threshold
        model.eos_threshold = 1e9  # no EOS: the warning is right
        try:
            with caplog.at_level(logging.WARNING, logger="pocket_tts"):
                model.generate_audio(None, "Short.", seed=0)
        finally:
            model.eos_threshold = old
        assert "without EOS" in caplog.text
    finally:
        model._estimate_max_gen_len = real


def test_long_voice_prompt_warns(model, caplog) -> None:
    """A prompt over 30 s is kept whole (the reference's API does), with a warning that says
    what it costs and how to keep 30 s."""
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(31 * 24000)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="pocket_tts"):
        voice = model.get_state_for_audio_prompt(long)
    assert "voice prompt is 31 s long" in caplog.text and "truncate=True" in caplog.text
    assert voice.offset > 30 * 12.5
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pocket_tts"):
        model.get_state_for_audio_prompt(long[: 10 * 24000])
    assert "voice prompt" not in caplog.text


def test_non_finite_values_name_their_origin(model) -> None:
    """NaN in a voice state is named as the cause (not one generic 'latents contain NaN'),
    and only its stream fails: a stream beside it gets its audio."""
    import threading

    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    broken = voice.copy()
    broken.kv = broken.kv.copy()
    broken.kv[0, :, 3] = np.nan  # a key and its value
    got: dict[str, object] = {}

    def run(name, v) -> None:
        try:
            got[name] = model.generate_audio(v, "Origins of things.", seed=1)
        except FloatingPointError as exc:
            got[name] = exc

    threads = [threading.Thread(target=run, args=a) for a in (("bad", broken), ("ok", voice))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(got["bad"], FloatingPointError)
    assert "voice state holds NaN" in str(got["bad"]) and "rebuild the voice" in str(got["bad"])
    assert isinstance(got["ok"], np.ndarray)
    assert np.array_equal(got["ok"], model.generate_audio(voice, "Origins of things.", seed=1))
