"""Benchmark fixtures: random checkpoints in the official layout (seeded), the shared voice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared() -> Path:
    for cand in (
        os.environ.get("POCKET_TTS_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        "/work/shared/data",
    ):
        if cand and (Path(cand) / "ref.wav").exists():
            return Path(cand)
    raise RuntimeError("shared data folder not found")


SHARED = _shared()


@pytest.fixture(scope="session", params=["english_2026-10", "english_2m_2026-10"])
def checkpoint(request, tmp_path_factory):
    """(config name, yaml path, weights path) of a random checkpoint."""
    from pocket_tts.testing import make_random_checkpoint

    out = tmp_path_factory.mktemp(request.param)
    yaml_path, weights = make_random_checkpoint(
        request.param, 0, out, tokenizer=SHARED / "tokenizer.model"
    )
    return request.param, yaml_path, weights


@pytest.fixture(scope="session")
def loaded(checkpoint):
    """(name, model, voice state) with EOS disabled."""
    from pocket_tts import TTSModel

    name, yaml_path, _ = checkpoint
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0)
    voice = model.get_state_for_audio_prompt(str(SHARED / "ref.wav"))
    return name, model, voice
