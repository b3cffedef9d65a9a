"""Many threads on one TTSModel: every call owns its state, and a seeded call's audio is bit for
bit the same whatever runs beside it, whenever it starts, and whenever the others stop (by
finishing, by cancellation, or by failing on bad input)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import REF_WAV, engine_threads_exit

from pocket_tts import TTSModel

TEXTS = [
    "Hello world. This is the second sentence.",
    "A short one.",
    "Numbers like four hundred and twelve, read aloud.",
    "The quick brown fox jumps over the lazy dog.",
    "Yes.",
    "Several streams share one model here.",
]


@pytest.fixture(scope="module")
def model_and_voices(random_checkpoint):
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0)
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    return model, [voice, None]


def _alone(model, voices, i: int) -> np.ndarray:
    return model.generate_audio(voices[i % 2], TEXTS[i % len(TEXTS)], seed=100 + i)


def _threads_named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_concurrent_seeded_streams_are_each_bit_identical_to_alone(model_and_voices) -> None:
    model, voices = model_and_voices
    n = 6
    want = [_alone(model, voices, i) for i in range(n)]
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    cancelled = threading.Event()
    cancelled_audio: list[np.ndarray] = []

    def run(i: int) -> None:
        try:
            time.sleep(0.03 * i)  # staggered joins
            chunks = [
                np.array(c)
                for c in model.generate_audio_stream(
                    voices[i % 2], TEXTS[i % len(TEXTS)], seed=100 + i
                )
            ]
            got[i] = np.concatenate(chunks)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def cancel_mid_way() -> None:
        for chunk in model.generate_audio_stream(
            voices[0], "A long sentence " * 8, seed=7, stop=cancelled
        ):
            cancelled_audio.append(np.array(chunk))
            if len(cancelled_audio) == 2:
                cancelled.set()

    def bad_input() -> None:
        with pytest.raises(ValueError):
            model.generate_audio(voices[0], "Fine.", max_tokens=0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    threads += [threading.Thread(target=cancel_mid_way), threading.Thread(target=bad_input)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    for i in range(n):
        assert got[i].tobytes() == want[i].tobytes(), f"stream {i} differs from its run alone"
    assert len(cancelled_audio) >= 2
    assert engine_threads_exit()


def test_a_seeded_call_beside_unseeded_calls_and_voice_prompts(model_and_voices) -> None:
    """Whoever holds the model's generator, the others do not draw from it: a seeded call is
    unchanged by unseeded calls and voice prompts running at the same time."""
    model, voices = model_and_voices
    want = _alone(model, voices, 0)
    result: list[np.ndarray] = []
    started = threading.Event()

    def seeded() -> None:
        chunks = []
        for c in model.generate_audio_stream(voices[0], TEXTS[0], seed=100):
            started.set()
            chunks.append(np.array(c))
        result.append(np.concatenate(chunks))

    t = threading.Thread(target=seeded)
    t.start()
    started.wait(60)
    others = [
        threading.Thread(target=model.generate_audio, args=(voices[1], TEXTS[1])),
        threading.Thread(target=model.get_state_for_audio_prompt, args=(str(REF_WAV),)),
    ]
    for o in others:
        o.start()
    for o in others + [t]:
        o.join(timeout=600)
    assert result[0].tobytes() == want.tobytes()


def test_sequential_calls_share_the_model_generator_like_the_reference(model_and_voices):
    """From one thread, unseeded calls continue the model's generator (torch's global one in
    the reference): re-seeding replays the same sequence of calls exactly."""
    model, voices = model_and_voices
    model.seed(3)
    first = [model.generate_audio(voices[0], t) for t in TEXTS[:2]]
    model.seed(3)
    again = [model.generate_audio(voices[0], t) for t in TEXTS[:2]]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again, strict=True))
    model.seed(3)
    model.generate_audio(voices[0], TEXTS[0])
    assert model.generate_audio(voices[0], TEXTS[0]).tobytes() != first[0].tobytes()


def test_many_short_concurrent_calls_leave_no_thread_behind(model_and_voices) -> None:
    model, voices = model_and_voices
    before = {t.ident for t in threading.enumerate()}
    threads = [
        threading.Thread(target=model.generate_audio, args=(voices[i % 2], "Hi."))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert engine_threads_exit()
    assert not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
