"""The drop-in TTSModel: whole-pipeline parity with the reference, stream == batch, EOS,
cancellation, state reuse, long text, and the public surface wrappers rely on (signatures,
torch-style calls on the audio, text attributes that take effect when set)."""

from __future__ import annotations

import inspect
import json
import threading

import numpy as np
import pytest
from conftest import REF_WAV, engine_threads_exit, run_reference

from pocket_tts import TTSModel
from pocket_tts.audio.resample import torch_linspace
from pocket_tts.tts_model import AudioArray
from pocket_tts.voice import VoiceState

TWO_SENTENCES = "Hello world. This is the second sentence."


@pytest.fixture(scope="module")
def small(random_checkpoint):
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0)
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    return model, voice, yaml_path


# Audio stand-ins for the torch-style calls: values beyond [-1, 1], and a NaN.
SURFACE_AUDIO = np.random.default_rng(0).normal(0, 0.8, 4000).astype(np.float32)
SURFACE_AUDIO_NAN = np.array([np.nan, 2.0, -2.0, 0.5, -0.25], np.float32)
LINSPACE_STEPS = [2, 3, 7, 120, 240, 481, 960]
# Each case sets one text attribute (or edits replace_characters in place) on a text where
# the reference's output changes because of it.
TEXT_CASES = [
    {"name": "remove_semicolons", "text": "hello; there", "assign": {"remove_semicolons": True}},
    {
        "name": "pad_with_spaces_for_short_inputs",
        "text": "hi there",
        "assign": {"pad_with_spaces_for_short_inputs": True},
    },
    {
        "name": "append_terminal_punctuation",
        "text": "hello there",
        "assign": {"append_terminal_punctuation": False},
    },
    {
        "name": "capitalize_first_letter",
        "text": "hello there.",
        "assign": {"capitalize_first_letter": False},
    },
    {
        "name": "replace_characters",
        "text": "Tom & Jerry.",
        "assign": {"replace_characters": {"&": "and"}},
    },
    {
        "name": "replace_characters_in_place",
        "text": "Tom & Jerry.",
        "update_replace_characters": {"&": "and"},
    },
    {
        "name": "model_recommended_frames_after_eos",
        "text": "Hello there.",
        "assign": {"model_recommended_frames_after_eos": 4},
    },
]


@pytest.fixture(scope="module")
def surface(small, tmp_path_factory):
    """The reference's public names and signatures, its text chunks under each TEXT_CASE,
    torch.linspace(0, 1, n) and the torch-style calls on SURFACE_AUDIO (one reference run)."""
    _, _, yaml_path = small
    work = tmp_path_factory.mktemp("surface")
    spec = {"config": str(yaml_path), "text_cases": TEXT_CASES, "linspace_steps": LINSPACE_STEPS}
    (work / "in.json").write_text(json.dumps(spec), encoding="utf-8")
    np.savez(work / "in.npz", audio=SURFACE_AUDIO, audio_nan=SURFACE_AUDIO_NAN)
    out = run_reference("surface_golden.py", work / "in.json", work / "in.npz", work / "out.npz")
    return json.loads(out), dict(np.load(work / "out.npz"))


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


def test_fade_in_at_the_start_of_each_chunk(small, surface) -> None:
    """Each chunk's first 5 ms are multiplied by torch.linspace(0, 1, 120), bit for bit."""
    model, voice, _ = small
    report, arrays = surface
    ramp = model._stages.fade_in
    assert ramp.dtype == np.float32 and ramp.tobytes() == arrays["linspace_120"].tobytes()
    audio = model.generate_audio(voice, "Hi.", seed=1)
    assert audio[0] == 0.0
    # Only the first 120 samples of each text chunk are faded.
    model._stages.fade_in = np.ones(120, np.float32)
    try:
        plain = model.generate_audio(voice, "Hi.", seed=1)
    finally:
        model._stages.fade_in = ramp
    assert np.array_equal(audio[120:], plain[120:])
    assert np.array_equal(audio[:120], plain[:120] * arrays["linspace_120"])


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
    assert engine_threads_exit()


def test_abandoned_generator_stops_its_thread(small) -> None:
    model, voice, _ = small
    gen = model.generate_audio_stream(voice, "Some words " * 10, seed=0)
    next(gen)
    gen.close()
    assert engine_threads_exit()


def test_flow_lm_error_reaches_the_caller_and_stops_its_thread(small, monkeypatch) -> None:
    """An exception on the flow-LM thread is raised in the consumer's thread, after the audio
    of the frames before it; no thread is left and the model keeps working."""
    model, voice, _ = small
    real_step = model.flow_lm.step_batch
    calls = []

    def failing_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("step failed")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(model.flow_lm, "step_batch", failing_step)
    model.max_decoder_frames_per_call = 1
    got = 0
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            for chunk in model.generate_audio_stream(voice, "Some words here.", seed=0):
                got += len(chunk)
    finally:
        model.max_decoder_frames_per_call = 0
    assert got == 3 * 1920  # frames 0-2, decoded one per call before the error
    assert engine_threads_exit()
    monkeypatch.undo()
    assert len(model.generate_audio(voice, "Still fine.", seed=0)) > 0


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


# ------------------------------------------------------------------------------------------
# Public surface: what wrappers written for the reference call
# ------------------------------------------------------------------------------------------


def _parameters(fn) -> list[list]:
    return [
        [q.name, q.kind.name, None if q.default is inspect.Parameter.empty else repr(q.default)]
        for q in inspect.signature(fn).parameters.values()
    ]


def test_public_names_and_signatures_match_the_reference(small, surface) -> None:
    """Every public name the reference's TTSModel defines exists here; every method takes the
    reference's parameters (names, order, kinds, defaults), then only keyword-only extras."""
    model, _, _ = small
    report, _ = surface
    public = report["public"]
    assert {"load_model", "generate_audio", "generate_audio_stream"} <= set(public)
    for name, ref in public.items():
        assert hasattr(model, name), name
        if ref["kind"] == "property":
            assert isinstance(inspect.getattr_static(TTSModel, name), property), name
        if "parameters" not in ref:
            continue
        ours = _parameters(getattr(TTSModel, name))
        n = len(ref["parameters"])
        assert ours[:n] == ref["parameters"], name
        assert all(kind == "KEYWORD_ONLY" for _, kind, _ in ours[n:]), (name, ours[n:])


def test_load_training_checkpoint_says_how_to_export(small) -> None:
    model, _, _ = small
    with pytest.raises(ValueError, match="need torch.*safetensors"):
        model.load_training_checkpoint("step_1000.pt")


def test_audio_answers_torch_style_calls_like_the_reference(surface) -> None:
    """.numpy(), .detach(), .cpu(), .clamp(...), .to(int16) and .shape on the audio give what
    they give on the reference's tensors."""
    report, want = surface
    audio = SURFACE_AUDIO.copy().view(AudioArray)
    plain = audio.numpy()
    assert type(plain) is np.ndarray and np.shares_memory(plain, audio)
    assert plain.tobytes() == want["numpy"].tobytes()
    assert audio.detach().cpu().numpy().tobytes() == want["detach_cpu_numpy"].tobytes()
    assert audio.to("cpu") is audio
    calls = {
        "clamp": audio.clamp(-1, 1),
        "clamp_keywords": audio.clamp(min=-0.5, max=0.25),
        "clamp_min": audio.clamp(min=-0.5),
        "clamp_max": audio.clamp(max=0.25),
        "clamp_inverted": audio.clamp(0.5, -0.5),
        "clamp_nan": SURFACE_AUDIO_NAN.copy().view(AudioArray).clamp(-1, 1),
        "int16": (audio.clamp(-1, 1) * 32767).to(np.int16),
    }
    for key, got in calls.items():
        assert isinstance(got, AudioArray), key
        got = got.numpy()
        assert got.dtype == want[key].dtype and got.shape == want[key].shape, key
        assert got.tobytes() == want[key].tobytes(), key
    assert list(audio.shape) == list(want["shape"]) and audio.shape[-1] == len(SURFACE_AUDIO)
    # pipecat passes torch.int16 itself: a torch dtype is taken by its name.
    dtype = report["torch_dtype"]
    stand_in = {"__module__": dtype["module"], "__str__": lambda self: dtype["str"]}
    torch_int16 = type(dtype["name"], (), stand_in)()
    converted = (audio.clamp(-1, 1) * 32767).to(torch_int16).numpy()
    assert converted.tobytes() == want["int16"].tobytes()
    with pytest.raises(TypeError, match="min or max"):
        audio.clamp()
    with pytest.raises(TypeError, match="numpy dtype"):
        audio.to("bfloat16")


def test_generated_audio_is_an_audio_array_and_stays_numpy(small) -> None:
    model, voice, _ = small
    chunks = list(model.generate_audio_stream(voice, "Hello there.", seed=4))
    batch = model.generate_audio(voice, "Hello there.", seed=4)
    assert all(isinstance(c, AudioArray) for c in chunks) and isinstance(batch, AudioArray)
    assert batch.dtype == np.float32 and batch.ndim == 1
    # numpy keeps working on it: concatenation, arithmetic, comparisons, reductions.
    joined = np.concatenate(chunks)
    assert np.array_equal(joined, batch) and joined.tobytes() == batch.numpy().tobytes()
    assert np.array_equal((batch * 2).numpy(), batch.numpy() * 2)
    assert float(np.abs(batch).max()) == float(np.abs(batch.numpy()).max())
    assert type(batch.numpy()) is np.ndarray


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c["name"] for c in TEXT_CASES])
def test_text_attributes_take_effect_as_in_the_reference(small, surface, case, monkeypatch):
    """Setting a text attribute on the model changes the chunks generated (text and frames
    after EOS) exactly as it does on the reference's model."""
    model, _, _ = small
    report, _ = surface
    want = report["text_cases"][case["name"]]
    assert want["set"] != want["unset"]  # the case exercises the attribute

    def chunks_of(text: str) -> list[list]:
        seen: list[list] = []

        def record(voice, chunk, copy_state, stop, noise):
            seen.append([chunk.text, chunk.frames_after_eos])
            return iter(())

        with monkeypatch.context() as patch:
            patch.setattr(model, "_generate_chunk", record)
            for _ in model.generate_audio_stream(None, text):
                pass
        return seen

    assert chunks_of(case["text"]) == want["unset"]
    for attr, value in case.get("assign", {}).items():
        monkeypatch.setattr(model, attr, value)
    for key, value in case.get("update_replace_characters", {}).items():
        monkeypatch.setitem(model.replace_characters, key, value)
    assert chunks_of(case["text"]) == want["set"]


def test_torch_linspace_matches_torch_bit_for_bit(surface) -> None:
    _, arrays = surface
    for n in LINSPACE_STEPS:
        assert torch_linspace(0, 1, n).tobytes() == arrays[f"linspace_{n}"].tobytes(), n
