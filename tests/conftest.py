"""Shared fixtures: paths to the shared data, the reference side-venv, random checkpoints.

The reference (PyTorch ``pocket-tts==4.0.1``) lives only in ``.venv-ref`` and is driven through
subprocesses running scripts from ``tools/reference/``; it is never imported here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Downloads and the packed-weights cache of this session go to a temporary folder, never to the
# user's ~/.cache (subprocesses inherit it).
_CACHE = tempfile.mkdtemp(prefix="pocket-tts-test-cache-")
os.environ["POCKET_TTS_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


def _shared_data() -> Path:
    if "POCKET_TTS_SHARED_DATA" in os.environ:
        return Path(os.environ["POCKET_TTS_SHARED_DATA"])
    for candidate in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if candidate.exists():
            return candidate
    return REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()
REF_PYTHON = Path(os.environ.get("POCKET_TTS_REF_PYTHON", REPO / ".venv-ref" / "bin" / "python"))
TOKENIZER_MODEL = SHARED_DATA / "tokenizer.model"
REF_WAV = SHARED_DATA / "ref.wav"
JFK_WAV = SHARED_DATA / "jfk_16k.wav"


def engine_threads_exit(timeout: float = 10.0) -> bool:
    """True once no engine worker thread is alive (they exit when their last stream leaves);
    False if some are still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("pocket-tts-")]:
            return True
        time.sleep(0.01)
    return False


def run_reference(
    script: str, *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> str:
    """Run ``tools/reference/<script>`` with the reference venv's Python (``env``: extra
    environment variables); return its stdout.

    Fails (never skips) when the side venv is missing: ``.ci/run`` always builds it.
    """
    if not REF_PYTHON.exists():
        pytest.fail(f"reference venv missing at {REF_PYTHON}; run tools/setup_reference_venv.sh")
    env = dict(
        os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", **(env or {})
    )
    # The reference's import name is also ``pocket_tts``: keep our checkout off its path.
    env.pop("PYTHONPATH", None)
    env.pop("LD_PRELOAD", None)  # tools/sanitize.sh: PyTorch runs without the sanitizer
    proc = subprocess.run(
        [str(REF_PYTHON), str(REPO / "tools" / "reference" / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd="/",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reference script {script} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def pytest_report_header(config) -> str:
    """Which kernels this run exercises: POCKET_TTS_FORCE_GENERIC=1 runs the whole suite (and
    every subprocess it starts) on the portable C fallback."""
    from pocket_tts import _native

    if _native.isa() == "avx512":
        return "pocket_tts kernels: AVX-512 (and AVX2/FMA/F16C)"
    if _native.has_avx2():
        return "pocket_tts kernels: AVX2/FMA/F16C"
    forced = os.environ.get("POCKET_TTS_FORCE_GENERIC", "0") not in ("", "0")
    return "pocket_tts kernels: portable" + (" (POCKET_TTS_FORCE_GENERIC)" if forced else "")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (tokenizer.model, ref.wav, jfk_16k.wav)."""
    return SHARED_DATA


def _python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """Factory ``random_checkpoint(config_name, seed=0) -> (yaml_path, weights_path)``.

    Writes a seeded random checkpoint of a packaged config (``pocket_tts.testing``) whose YAML
    uses the shared SentencePiece ``TOKENIZER_MODEL``, so the reference loads it offline. Cached
    per (config, seed) for the whole session.
    """
    from pocket_tts.testing import make_random_checkpoint

    root = tmp_path_factory.mktemp("random_checkpoints")
    cache: dict[tuple[str, int], tuple[Path, Path]] = {}

    def get(config_name: str, seed: int = 0) -> tuple[Path, Path]:
        key = (config_name, seed)
        if key not in cache:
            cache[key] = make_random_checkpoint(
                config_name, seed, root / f"{config_name}-seed{seed}", tokenizer=TOKENIZER_MODEL
            )
        return cache[key]

    return get


@pytest.fixture(scope="session")
def small(random_checkpoint):
    """The YAML path of the random english_2m checkpoint (a test module may define its own
    ``small``)."""
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    return str(yaml_path)
