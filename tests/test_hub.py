"""Hub and URL resolution against a fake Hugging Face Hub served on 127.0.0.1.

The fake implements what ``huggingface_hub.hf_hub_download`` talks to: ``HEAD``/``GET
/{repo}/resolve/{revision}/{filename}`` with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``,
404s with ``X-Error-Code`` (``RevisionNotFound``/``EntryNotFound``/``RepoNotFound``), and 401
with ``X-Error-Code: GatedRepo`` for a gated repo. The real library is pointed at it through
``HF_ENDPOINT``; nothing is mocked on the client side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import JFK_WAV, REPO

from pocket_tts import hub
from pocket_tts.config import load_config
from pocket_tts.hub import (
    PREDEFINED_VOICES,
    GatedRepoError,
    HubError,
    HubNotFoundError,
    HubOfflineError,
    is_remote_path,
    location_path,
    parse_hf_path,
    predefined_voice_path,
    resolve_path,
    resolve_weights,
)

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
ENGLISH = load_config("english")
VC_REPO, VC_REV = "kyutai/pocket-tts", ENGLISH.weights_path.rsplit("@", 1)[1]
NOVC_REPO = "kyutai/pocket-tts-without-voice-cloning"
NOVC_REV = ENGLISH.weights_path_without_voice_cloning.rsplit("@", 1)[1]


class FakeHub:
    """State of the fake server: repos, plain URLs, and a log of requests."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.urls: dict[str, tuple[int, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add_repo(
        self,
        repo_id: str,
        commits: dict[str, dict[str, bytes]],
        branches: dict[str, str] | None = None,
        gated: bool = False,
        repo_type: str = "model",
    ) -> None:
        key = repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"
        self.repos[key] = {"commits": commits, "branches": branches or {}, "gated": gated}

    def log(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.requests)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._handle(head=False)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(
        self, status: int, code: str, message: str, head: bool, extra: dict[str, str] | None = None
    ) -> None:
        headers = {
            "X-Error-Code": code,
            "X-Error-Message": message,
            "Content-Type": "application/json",
            **(extra or {}),
        }
        self._send(status, json.dumps({"error": message}).encode(), headers, head)

    def _handle(self, head: bool) -> None:
        raw_path = urllib.parse.urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((self.command, urllib.parse.unquote(raw_path)))
        if raw_path.startswith("/files/"):
            status, body = self.hub.urls.get(urllib.parse.unquote(raw_path), (404, b"nope"))
            self._send(status, body, {"Content-Type": "application/octet-stream"}, head)
            return
        m = re.match(r"^/((?:datasets/|spaces/)?[^/]+/[^/]+)/resolve/([^/]+)/(.+)$", raw_path)
        if m is None:
            self._send(404, b"not a hub route", {}, head)
            return
        repo_key = m.group(1)
        revision = urllib.parse.unquote(m.group(2))
        filename = urllib.parse.unquote(m.group(3))
        repo = self.hub.repos.get(repo_key)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found", head)
            return
        if repo["gated"]:
            self._error(
                401,
                "GatedRepo",
                f"Access to model {repo_key} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                head,
            )
            return
        commit = repo["branches"].get(revision, revision)
        files = repo["commits"].get(commit)
        if files is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return
        if filename not in files:
            self._error(
                404, "EntryNotFound", f"{filename} does not exist", head, {"X-Repo-Commit": commit}
            )
            return
        body = files[filename]
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
            "Content-Type": "application/octet-stream",
        }
        self._send(200, body, headers, head)


@pytest.fixture(scope="module")
def fake_hub():
    """A running fake Hub; yields (FakeHub, base URL)."""
    state = FakeHub()
    handler = type("Handler", (_Handler,), {"hub": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    state.add_repo(
        "org/voices",
        {
            COMMIT_A: {"a.wav": b"version A", "sub/dir/x.bin": b"xx"},
            COMMIT_B: {"a.wav": b"version B!"},
        },
        branches={"main": COMMIT_B, "v1": COMMIT_A},
    )
    state.add_repo(
        "org/data", {COMMIT_A: {"d.txt": b"dataset file"}}, {"main": COMMIT_A}, repo_type="dataset"
    )
    state.add_repo(VC_REPO, {VC_REV: {"languages/english/model.safetensors": b"vc"}}, gated=True)
    novc: dict[str, dict[str, bytes]] = {
        NOVC_REV: {"languages/english/model.safetensors": b"weights without cloning"}
    }
    # english's cloning-free weights and the voice states are pinned to the same commit.
    novc.setdefault(hub.PREDEFINED_VOICES_REVISION, {}).update(
        {
            f"languages/english/embeddings/{v}.safetensors": f"state {v}".encode()
            for v in PREDEFINED_VOICES
        }
    )
    state.add_repo(NOVC_REPO, novc)
    state.urls["/files/voice.wav"] = (200, b"RIFF fake wav")
    state.urls["/files/secret.wav"] = (403, b"forbidden")
    try:
        yield state, url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(fake_hub, tmp_path, monkeypatch):
    """Point huggingface_hub at the fake server with a fresh cache; no token is ever sent."""
    state, url = fake_hub
    state.clear()
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path / "url_cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return state, url, tmp_path


# ----------------------------------------------------------------------------------------------
# hf:// downloads
# ----------------------------------------------------------------------------------------------


def test_download_and_cache_hit_on_commit(env):
    state, _, tmp = env
    loc = f"hf://org/voices/a.wav@{COMMIT_A}"
    path = resolve_path(loc)
    assert path.read_bytes() == b"version A"
    assert str(path).startswith(str(tmp / "hf_cache"))
    assert [m for m, _ in state.log()] == ["HEAD", "GET"]
    assert state.log()[0][1] == f"/org/voices/resolve/{COMMIT_A}/a.wav"
    state.clear()
    # Pinned to a commit and cached: no request at all.
    assert resolve_path(loc) == path
    assert state.log() == []


def test_branch_revision_costs_one_head_when_cached(env):
    state, _, _ = env
    path = resolve_path("hf://org/voices/a.wav")  # default revision: main
    assert path.read_bytes() == b"version B!"
    state.clear()
    assert resolve_path("hf://org/voices/a.wav@main") == path
    assert [m for m, _ in state.log()] == ["HEAD"]


def test_revision_pinning(env):
    assert resolve_path(f"hf://org/voices/a.wav@{COMMIT_A}").read_bytes() == b"version A"
    assert resolve_path(f"hf://org/voices/a.wav@{COMMIT_B}").read_bytes() == b"version B!"
    assert resolve_path("hf://org/voices/a.wav@v1").read_bytes() == b"version A"
    assert resolve_path("hf://org/voices/a.wav@main").read_bytes() == b"version B!"
    assert resolve_path(f"hf://org/voices/sub/dir/x.bin@{COMMIT_A}").read_bytes() == b"xx"
    assert resolve_path("hf://datasets/org/data/d.txt").read_bytes() == b"dataset file"


def test_not_found_errors(env):
    with pytest.raises(HubNotFoundError, match=r"revision 'nope'") as ei:
        resolve_path("hf://org/voices/a.wav@nope")
    assert ei.value.location == "hf://org/voices/a.wav@nope"
    with pytest.raises(HubNotFoundError, match="missing.wav"):
        resolve_path(f"hf://org/voices/missing.wav@{COMMIT_A}")
    with pytest.raises(FileNotFoundError, match="org/unknown"):
        resolve_path("hf://org/unknown/file.bin")


def test_gated_repo_error(env):
    with pytest.raises(GatedRepoError, match="gated") as ei:
        resolve_path(ENGLISH.weights_path)
    msg = str(ei.value)
    assert "languages/english/model.safetensors" in msg
    assert "https://huggingface.co/kyutai/pocket-tts" in msg
    assert isinstance(ei.value, HubError) and isinstance(ei.value, OSError)


def test_offline_error_names_file_and_cache_still_works(env, monkeypatch):
    state, _, _ = env
    cached = resolve_path(f"hf://org/voices/a.wav@{COMMIT_A}")
    resolve_path("hf://org/voices/a.wav@main")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    state.clear()
    # Cached files resolve offline, by commit and by branch (refs/main in the cache).
    assert resolve_path(f"hf://org/voices/a.wav@{COMMIT_A}") == cached
    assert resolve_path("hf://org/voices/a.wav@main").read_bytes() == b"version B!"
    with pytest.raises(HubOfflineError) as ei:
        resolve_path(f"hf://org/voices/sub/dir/x.bin@{COMMIT_A}")
    assert "hf://org/voices/sub/dir/x.bin@" + COMMIT_A in str(ei.value)
    assert "HF_HUB_OFFLINE" in str(ei.value)
    assert state.log() == []


def test_network_failure_fails_fast_with_the_routes(env, monkeypatch):
    """A hub that cannot be reached fails at once (one TCP probe; huggingface_hub would retry
    with back-off, ~23 s per file) with a short message naming the offline routes, and files
    already in the cache still resolve."""
    state, _, _ = env
    cached = resolve_path(f"hf://org/voices/a.wav@{COMMIT_A}")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    state.clear()
    start = time.monotonic()
    with pytest.raises(HubOfflineError) as ei:
        resolve_path(f"hf://org/voices/b.wav@{COMMIT_A}")
    assert time.monotonic() - start < 10
    message = str(ei.value)
    assert f"hf://org/voices/b.wav@{COMMIT_A}" in message and "cannot be reached" in message
    assert "HF_HUB_OFFLINE=1" in message and "--config" in message and len(message) < 500
    assert resolve_path(f"hf://org/voices/a.wav@{COMMIT_A}") == cached  # from the cache
    assert state.log() == []


def test_hf_endpoint_set_before_import_in_fresh_process(fake_hub, tmp_path):
    _, url = fake_hub
    code = (
        "from pocket_tts.hub import resolve_path\n"
        f"print(resolve_path('hf://org/voices/a.wav@{COMMIT_A}').read_bytes().decode())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(
        PYTHONPATH=str(REPO),
        HF_ENDPOINT=url,
        HF_HOME=str(tmp_path / "home"),
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "version A"
    assert list((tmp_path / "home" / "hub").glob("models--org--voices/snapshots/*/a.wav"))


def test_hub_error_classes_are_translated(env):
    # The library's own classes, caught by type: each becomes one of ours, naming the file.
    from huggingface_hub import errors

    cases = {
        "hf://org/unknown/file.bin": (errors.RepositoryNotFoundError, HubNotFoundError),
        "hf://org/voices/a.wav@nope": (errors.RevisionNotFoundError, HubNotFoundError),
        f"hf://org/voices/missing.wav@{COMMIT_A}": (errors.EntryNotFoundError, HubNotFoundError),
        ENGLISH.weights_path: (errors.GatedRepoError, GatedRepoError),
    }
    for location, (theirs, ours) in cases.items():
        with pytest.raises(ours) as ei:
            resolve_path(location)
        assert type(ei.value) is ours
        assert isinstance(ei.value.__cause__, theirs)
        assert ei.value.location == location and location in str(ei.value)


# ----------------------------------------------------------------------------------------------
# Weights fallback and predefined voices
# ----------------------------------------------------------------------------------------------


def test_resolve_weights_gated_falls_back(env, caplog):
    state, _, _ = env
    with caplog.at_level(logging.WARNING, logger="pocket_tts.hub"):
        path, has_voice_cloning = resolve_weights(ENGLISH)
    assert has_voice_cloning is False
    assert path.read_bytes() == b"weights without cloning"
    warning = caplog.text
    assert "gated" in warning and "without voice cloning" in warning
    assert "https://huggingface.co/kyutai/pocket-tts " in warning
    methods = [(m, p.split("/resolve/")[0]) for m, p in state.log()]
    assert methods[0] == ("HEAD", "/kyutai/pocket-tts")


def test_resolve_weights_primary_ok(env):
    cfg = dataclasses.replace(ENGLISH, weights_path=f"hf://org/voices/a.wav@{COMMIT_A}")
    path, has_voice_cloning = resolve_weights(cfg)
    assert has_voice_cloning is True and path.read_bytes() == b"version A"


def test_resolve_weights_no_fallback_raises(env):
    cfg = dataclasses.replace(ENGLISH, weights_path_without_voice_cloning=None)
    with pytest.raises(GatedRepoError):
        resolve_weights(cfg)


def test_resolve_weights_both_fail(env):
    cfg = dataclasses.replace(
        ENGLISH, weights_path_without_voice_cloning=f"hf://org/voices/none.bin@{COMMIT_A}"
    )
    with pytest.raises(HubNotFoundError) as ei:
        resolve_weights(cfg)
    assert "kyutai/pocket-tts/languages/english/model.safetensors" in str(ei.value)
    assert "none.bin" in str(ei.value)


def test_resolve_weights_offline_fallback_to_cached(env, monkeypatch):
    # Like the reference, any failure of the primary file (here: offline, not cached) falls
    # back to the cloning-free weights when those are cached.
    resolve_path(ENGLISH.weights_path_without_voice_cloning)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, has_voice_cloning = resolve_weights(ENGLISH)
    assert has_voice_cloning is False and path.read_bytes() == b"weights without cloning"


def test_resolve_weights_local(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"local")
    cfg = dataclasses.replace(ENGLISH, weights_path=str(weights))
    assert resolve_weights(cfg) == (weights, True)
    # Relative paths resolve against the YAML's folder.
    rel = dataclasses.replace(ENGLISH, weights_path="w.safetensors").with_source_dir(tmp_path)
    assert resolve_weights(rel) == (weights, True)
    missing = dataclasses.replace(ENGLISH, weights_path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        resolve_weights(missing)  # no fallback for a missing local file, as in the reference
    none = dataclasses.replace(ENGLISH, weights_path=None)
    assert resolve_weights(none) == (None, True)


def test_predefined_voices(env):
    assert len(PREDEFINED_VOICES) == 27
    assert PREDEFINED_VOICES[:4] == ("cosette", "marius", "javert", "alba")
    assert set(PREDEFINED_VOICES) >= {
        "alba",
        "giovanni",
        "lola",
        "juergen",
        "rafael",
        "daan",
        "estelle",
        "caro_davy",
    }
    loc = predefined_voice_path("english", "alba")
    assert loc == (
        "hf://kyutai/pocket-tts-without-voice-cloning/languages/english/embeddings/"
        "alba.safetensors@a7056f505a4a8ca72d8b5fb1440071d6f1a35739"
    )
    assert resolve_path(loc).read_bytes() == b"state alba"
    with pytest.raises(ValueError, match="Did you mean 'alba'"):
        predefined_voice_path("english", "albaa")
    with pytest.raises(ValueError, match="stem"):
        predefined_voice_path("../english", "alba")
    assert "kyutai/pocket-tts and accept the terms" in hub.VOICE_CLONING_UNSUPPORTED


# ----------------------------------------------------------------------------------------------
# https:// URLs, local paths, parsing
# ----------------------------------------------------------------------------------------------


def test_url_download_and_cache(env, monkeypatch):
    state, url, tmp = env
    loc = f"{url}/files/voice.wav"
    path = resolve_path(loc)
    assert path.read_bytes() == b"RIFF fake wav"
    assert path.parent == tmp / "url_cache"
    assert path.name == hashlib.sha256(loc.encode()).hexdigest() + ".wav"  # reference layout
    assert [m for m, _ in state.log()] == ["GET"]
    state.clear()
    assert resolve_path(loc) == path
    assert state.log() == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_path(loc) == path  # cached: fine offline
    with pytest.raises(HubOfflineError, match="other.wav"):
        resolve_path(f"{url}/files/other.wav")


def test_url_errors(env):
    _, url, tmp = env
    with pytest.raises(HubNotFoundError, match="missing.wav"):
        resolve_path(f"{url}/files/missing.wav")
    with pytest.raises(GatedRepoError, match="403"):
        resolve_path(f"{url}/files/secret.wav")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/files/voice.wav"
    with pytest.raises(HubOfflineError, match="could not be reached"):
        resolve_path(dead)
    # Nothing half-written is left in the cache.
    assert not [p for p in (tmp / "url_cache").iterdir() if p.name.endswith(".incomplete")]


def test_load_prompt_audio_from_hub_and_url(env, fake_hub):
    import numpy as np

    from pocket_tts.audio.prompt import load_prompt_audio
    from pocket_tts.audio.read import AudioError

    state, url = fake_hub
    wav = JFK_WAV.read_bytes()
    state.add_repo("org/prompts", {COMMIT_A: {"jfk.wav": wav}}, {"main": COMMIT_A})
    state.urls["/files/jfk.wav"] = (200, wav)
    expected = load_prompt_audio(JFK_WAV)
    np.testing.assert_array_equal(
        load_prompt_audio(f"hf://org/prompts/jfk.wav@{COMMIT_A}"), expected
    )
    np.testing.assert_array_equal(load_prompt_audio(f"{url}/files/jfk.wav"), expected)
    state.clear()
    with pytest.raises(AudioError, match="safetensors"):  # refused before any download
        load_prompt_audio(predefined_voice_path("english", "alba"))
    assert state.log() == []
    with pytest.raises(GatedRepoError):
        load_prompt_audio("hf://kyutai/pocket-tts/voice.wav")


def test_local_paths(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"1")
    assert resolve_path(str(f)) == f
    assert resolve_path(f) == f
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("~/x.bin") == f
    # Local paths are not checked (a relative one may be resolved against a config folder).
    assert resolve_path("rel/nope.bin") == Path("rel/nope.bin")
    with pytest.raises(TypeError):
        resolve_path(3)  # type: ignore[arg-type]


def test_is_remote_path_and_location_path():
    for remote in ("hf://o/r/f.wav", "http://h/f.wav", "https://h/f.wav"):
        assert is_remote_path(remote)
    for local in ("f.wav", "/abs/f.wav", "hf:/o/r", "ftp://h/f", Path("hf://o/r/f"), 3, None):
        assert not is_remote_path(local)
    assert location_path("hf://o/r/dir/c.yaml@abc") == "hf://o/r/dir/c.yaml"
    assert location_path("hf://o/r/c.yaml@refs/pr/1") == "hf://o/r/c.yaml"
    assert location_path("hf://o/r/v.safetensors") == "hf://o/r/v.safetensors"
    assert location_path("https://h/dir/v.safetensors?download=1#x") == "/dir/v.safetensors"
    # Local paths are never cut, whatever they hold.
    assert location_path("dir@v2/tok.json") == "dir@v2/tok.json"
    assert location_path(Path("/a/b@c.yaml")) == "/a/b@c.yaml"


def test_parse_hf_path():
    loc = parse_hf_path("hf://kyutai/pocket-tts/languages/english/model.safetensors@abc")
    assert (loc.repo_id, loc.filename, loc.revision, loc.repo_type) == (
        "kyutai/pocket-tts",
        "languages/english/model.safetensors",
        "abc",
        "model",
    )
    assert parse_hf_path("hf://o/r/f.wav").revision is None
    assert parse_hf_path("hf://o/r/f.wav@refs/pr/1").revision == "refs/pr/1"
    assert parse_hf_path("hf://datasets/o/r/f.wav").repo_type == "dataset"
    assert parse_hf_path("hf://o/r/a/b.wav@v1").uri == "hf://o/r/a/b.wav@v1"
    for bad in (
        "hf://o/r",
        "hf://o/r/",
        "hf://o/r/f.wav@",
        "hf://o//f.wav",
        "hf://o/r/../x",
        "https://o/r/f",
        "hf://o/r a/f.wav",
    ):
        with pytest.raises(ValueError):
            parse_hf_path(bad)
