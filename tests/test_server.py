"""``pocket-tts serve`` as users run it: a real server process on loopback, driven by the
official ``openai`` client, curl and httpx. Audio is compared with the engine's own audio of
the same random checkpoint (temperature 0, so both are deterministic)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import REF_WAV

from pocket_tts.audio.wav import float_to_pcm16

TEXT = "Hello there. This is the server speaking."
LONG_TEXT = " ".join(
    f"Sentence number {i} goes on for a little while." for i in range(80)
)  # ~3900 chars


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``pocket-tts serve`` subprocess; stopped with SIGTERM (then killed) at the end."""

    def __init__(self, yaml_path: str, tmp: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pocket_tts",
                "serve",
                "--config",
                yaml_path,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--temperature",
                "0",
                "--default-voice",
                str(REF_WAV),
                *extra,
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd="/",
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start within 120 s")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def metric(self, name: str, headers: dict | None = None) -> float:
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


@pytest.fixture(scope="module")
def server(small, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    srv = Server(
        small, tmp, "--voices-dir", str(tmp / "voices"), "--max-streams", "6", "--max-queue", "8"
    )
    yield srv
    assert srv.stop() in (0, -signal.SIGTERM), srv.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def engine(small):
    """The same model in this process: the audio every answer must carry."""
    from pocket_tts import TTSModel

    model = TTSModel.load_model(config=small, temp=0)
    voice = model.get_state_for_audio_prompt(str(REF_WAV), truncate=True)
    cache: dict = {}

    def audio(text: str, state=None) -> np.ndarray:
        key = (text, id(state))
        if key not in cache:
            cache[key] = np.asarray(model.generate_audio(state or voice, text))
        return cache[key]

    audio.model = model  # type: ignore[attr-defined]
    return audio


def _pcm(audio: np.ndarray) -> np.ndarray:
    return float_to_pcm16(audio)


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    """A real decoder (FFmpeg, through PyAV): mono float64 samples and the rate."""
    import av

    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].rate
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    samples = np.concatenate(frames).astype(np.float64)
    if frames[0].dtype.kind == "i":
        samples /= 32768
    return samples, rate


def _similar(decoded: np.ndarray, rate: int, expected: np.ndarray) -> float:
    """How well a lossy decode follows the expected audio: the correlation of their 20 ms
    loudness envelopes, at the best delay (codec delays are under 200 ms). The random
    checkpoint's audio is clipped noise, which codecs do not reproduce sample for sample."""

    def envelope(a: np.ndarray, r: int) -> np.ndarray:
        hop = r // 50
        n = len(a) // hop
        return np.sqrt((a[: n * hop].reshape(n, hop) ** 2).mean(1))

    want = envelope(np.clip(expected, -1, 1), 24000)
    got = envelope(decoded, rate)
    best = 0.0
    for lag in range(10):
        a = got[lag : lag + len(want)]
        n = min(len(a), len(want))
        best = max(best, float(np.corrcoef(a[:n], want[:n])[0, 1]))
    return best


# ----------------------------------------------------------------------------------------------
# The reference's routes, with curl
# ----------------------------------------------------------------------------------------------


def test_health_page_and_models(server):
    assert httpx.get(f"{server.url}/health").json() == {"status": "healthy"}
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "<textarea" in page.text
    assert "DEFAULT_TEXT_PROMPT" not in page.text and "Pocket TTS" in page.text
    models = httpx.get(f"{server.url}/v1/models").json()
    assert {"tts-1", "pocket-tts"} <= {m["id"] for m in models["data"]}


def test_tts_route_with_curl_streams_the_engines_wav(server, engine, tmp_path):
    out = tmp_path / "out.wav"
    proc = subprocess.run(
        [
            "curl",
            "-sS",
            "-D",
            str(tmp_path / "headers"),
            "-o",
            str(out),
            "-F",
            f"text={TEXT}",
            f"{server.url}/tts",
        ],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    headers = (tmp_path / "headers").read_text().lower()
    assert "200" in headers.splitlines()[0] and "transfer-encoding: chunked" in headers
    assert "content-disposition: attachment; filename=generated_speech.wav" in headers
    assert "content-type: audio/wav" in headers
    data = out.read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
    samples = np.frombuffer(data[44:], "<i2")
    expected = _pcm(engine(TEXT))
    np.testing.assert_array_equal(samples[: len(expected)], expected)
    np.testing.assert_array_equal(samples[len(expected) :], np.zeros(4800, np.int16))  # 0.2 s


def test_tts_route_clones_an_upload_with_curl(server, engine, tmp_path):
    out = tmp_path / "cloned.wav"
    proc = subprocess.run(
        [
            "curl",
            "-sS",
            "-f",
            "-o",
            str(out),
            "-F",
            f"text={TEXT}",
            "-F",
            f"voice_wav=@{REF_WAV}",
            f"{server.url}/tts",
        ],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    expected = _pcm(engine(TEXT))  # the default voice is the same file
    np.testing.assert_array_equal(
        np.frombuffer(out.read_bytes()[44:], "<i2")[: len(expected)], expected
    )


def test_tts_route_answers_the_references_errors(server):
    url = f"{server.url}/tts"
    r = httpx.post(url, data={"text": "   "})
    assert r.status_code == 400 and r.json() == {"detail": "Text cannot be empty"}
    r = httpx.post(
        url,
        data={"text": "hi", "voice_url": "alba"},
        files={"voice_wav": ("v.wav", REF_WAV.read_bytes(), "audio/wav")},
    )
    assert r.status_code == 400 and "both" in r.json()["detail"]
    r = httpx.post(url, data={"text": "hi", "voice_url": "ftp://x/y.wav"})
    assert r.status_code == 400 and "http://, https://, or hf://" in r.json()["detail"]
    assert httpx.post(url, data={}).status_code == 422  # FastAPI's, as the reference
    r = httpx.post(url, data={"text": "hi"}, files={"voice_wav": ("v.wav", b"not audio")})
    assert r.status_code == 400 and "voice" in r.json()["detail"]


# ----------------------------------------------------------------------------------------------
# OpenAI's API, with the openai client
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac", "mp3", "opus", "aac"])
def test_openai_client_streams_every_format(server, engine, fmt):
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    pieces = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=LONG_TEXT[:400], response_format=fmt
    ) as response:
        assert response.headers["content-type"].startswith(
            {
                "wav": "audio/wav",
                "pcm": "audio/pcm",
                "flac": "audio/flac",
                "mp3": "audio/mpeg",
                "opus": "audio/ogg",
                "aac": "audio/aac",
            }[fmt]
        )
        for piece in response.iter_bytes():
            pieces.append(piece)
    data = b"".join(pieces)
    assert len(pieces) > 3  # progressive, not one body at the end
    expected = engine(LONG_TEXT[:400])
    if fmt in ("wav", "pcm"):
        samples = np.frombuffer(data[44:] if fmt == "wav" else data, "<i2")
        np.testing.assert_array_equal(samples, _pcm(expected))
    elif fmt == "flac":
        decoded, rate = _decode(data)
        assert rate == 24000
        np.testing.assert_array_equal(np.round(decoded * 32768).astype(np.int16), _pcm(expected))
    else:
        decoded, rate = _decode(data)
        assert abs(len(decoded) / rate - len(expected) / 24000) < 0.15
        assert _similar(decoded, rate, expected.astype(np.float64)) > 0.75


def test_sse_stream_format(server, engine):
    events = []
    with httpx.stream(
        "POST",
        f"{server.url}/v1/audio/speech",
        timeout=120,
        json={
            "model": "gpt-4o-mini-tts",
            "input": TEXT,
            "voice": "alloy",
            "response_format": "pcm",
            "stream_format": "sse",
            "instructions": "Speak calmly.",
        },
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["type"] == "speech.audio.done" and "usage" in events[-1]
    deltas = events[:-1]
    assert deltas and all(e["type"] == "speech.audio.delta" for e in deltas)
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    np.testing.assert_array_equal(np.frombuffer(audio, "<i2"), _pcm(engine(TEXT)))


def test_concurrent_clients_each_get_their_own_audio(server, engine):
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    texts = [f"Client number {i} says hello." for i in range(8)]
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=texts[i], response_format="pcm"
            ) as response:
                results[i] = response.read()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for i, text in enumerate(texts):  # 6 streams, 2 queued: batched == alone, bit for bit
        np.testing.assert_array_equal(np.frombuffer(results[i], "<i2"), _pcm(engine(text)))


def test_openai_error_envelope_and_limits(server):
    url = f"{server.url}/v1/audio/speech"
    base = {"model": "tts-1", "input": "Hi.", "voice": "alloy"}

    def err(r: httpx.Response, status: int, words: str) -> None:
        assert r.status_code == status, r.text
        e = r.json()["error"]
        assert set(e) >= {"message", "type", "code"} and words in e["message"], e

    err(httpx.post(url, json={**base, "response_format": "ogg"}), 400, "not supported")
    err(httpx.post(url, json={**base, "speed": 1.5}), 400, "speed")
    err(httpx.post(url, json={**base, "speed": 9}), 400, "between 0.25 and 4.0")
    err(httpx.post(url, json={**base, "input": "x" * 4097}), 400, "limit is 4096")
    err(httpx.post(url, json={**base, "input": " "}), 400, "empty")
    err(httpx.post(url, json={**base, "voice": "nobody"}), 400, "unknown voice")
    err(httpx.post(url, json={"model": "tts-1", "voice": "alloy"}), 400, "input")
    err(
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "JSON",
    )
    lone = b'{"model": "tts-1", "voice": "alloy", "input": "a\\ud800b"}'  # JSON may say it
    err(
        httpx.post(url, content=lone, headers={"content-type": "application/json"}),
        400,
        "surrogate",
    )
    err(httpx.get(f"{server.url}/v1/nothing"), 404, "Not Found")
    big = b"x" * (33 * 2**20)
    err(
        httpx.post(url, content=big, headers={"content-type": "application/json"}),
        413,
        "larger than the limit",
    )

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(34):
            yield b"x" * 2**20

    err(
        httpx.post(url, content=chunked(), headers={"content-type": "application/json"}),
        413,
        "larger than the limit",
    )

    def chunked_upload():  # a chunked multipart upload: the form parser must not hide the 413
        yield (
            b'--b0\r\nContent-Disposition: form-data; name="file"; filename="v.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n"
        )
        yield from chunked()
        yield b"\r\n--b0--\r\n"

    multipart = {"content-type": "multipart/form-data; boundary=b0"}
    err(
        httpx.post(f"{server.url}/v1/audio/voices", content=chunked_upload(), headers=multipart),
        413,
        "larger than the limit",
    )
    r = httpx.post(f"{server.url}/tts", content=chunked_upload(), headers=multipart)
    assert r.status_code == 413 and "larger than the limit" in r.json()["detail"], r.text
    # The server is still fine.
    assert httpx.post(url, json={**base, "response_format": "pcm"}, timeout=60).status_code == 200


# ----------------------------------------------------------------------------------------------
# Voices
# ----------------------------------------------------------------------------------------------


def test_voices_register_use_list_delete(server, engine, tmp_path):
    from pocket_tts.voice import export_model_state

    url = f"{server.url}/v1/audio/voices"
    jfk = (Path(REF_WAV).parent / "jfk_16k.wav").read_bytes()
    r = httpx.post(
        url, files={"file": ("jfk.wav", jfk, "audio/wav")}, data={"name": "jfk"}, timeout=120
    )
    assert r.status_code == 201, r.text
    voice = r.json()
    assert voice["name"] == "jfk" and voice["id"].startswith("voice_")
    again = httpx.post(url, files={"file": ("other-name.wav", jfk)}, timeout=120).json()
    assert again["id"] == voice["id"]  # keyed by content
    listed = httpx.get(url).json()["voices"]
    assert any(v["id"] == voice["id"] and v["type"] == "registered" for v in listed)
    assert any(v["id"] == "alloy" and v["type"] == "alias" for v in listed)

    model = engine.model
    state = model.get_state_for_audio_prompt(
        str(Path(REF_WAV).parent / "jfk_16k.wav"), truncate=True
    )
    r = httpx.post(
        f"{server.url}/v1/audio/speech",
        timeout=120,
        json={
            "model": "tts-1",
            "input": TEXT,
            "voice": {"id": voice["id"]},
            "response_format": "pcm",
        },
    )
    np.testing.assert_array_equal(np.frombuffer(r.content, "<i2"), _pcm(engine(TEXT, state)))

    # A voice-state file registers as it is.
    export_model_state(state, tmp_path / "jfk.safetensors")
    st = httpx.post(
        url,
        files={"file": ("jfk.safetensors", (tmp_path / "jfk.safetensors").read_bytes())},
        timeout=60,
    )
    assert st.status_code == 201, st.text
    r = httpx.post(
        f"{server.url}/v1/audio/speech",
        timeout=120,
        json={"model": "tts-1", "input": TEXT, "voice": st.json()["id"], "response_format": "pcm"},
    )
    np.testing.assert_array_equal(np.frombuffer(r.content, "<i2"), _pcm(engine(TEXT, state)))

    bad = httpx.post(url, files={"file": ("notes.wav", b"hello, not audio")}, timeout=60)
    assert bad.status_code == 400 and "voice" in bad.json()["error"]["message"]
    assert httpx.post(url, files={"file": ("e.wav", b"")}).status_code == 400

    for vid in (voice["id"], st.json()["id"]):
        assert httpx.delete(f"{url}/{vid}").json()["deleted"] is True
    assert httpx.delete(f"{url}/{voice['id']}").status_code == 404
    r = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": TEXT, "voice": voice["id"], "response_format": "pcm"},
    )
    assert r.status_code == 400 and "unknown voice" in r.json()["error"]["message"]


NGINX_CONF = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream pocket_tts {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 40m;
        location / {{
            proxy_pass http://pocket_tts;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;          # audio leaves as it is made
            proxy_request_buffering off;
            proxy_read_timeout 600s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@pytest.fixture
def nginx_pair(small, tmp_path):
    """Two replicas sharing one voices directory, behind nginx (round robin) on loopback."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    shared = tmp_path / "voices"
    a = Server(small, tmp_path, "--voices-dir", str(shared))
    b = Server(small, tmp_path, "--voices-dir", str(shared))
    port = _free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            tmp=tmp_path,
            a=a.port,
            b=b.port,
            port=port,
        )
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "nginx-stderr.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "nginx-stderr.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nginx did not answer within 30 s"
            time.sleep(0.1)
        yield url, {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        a.stop()
        b.stop()


def test_replicas_behind_nginx_share_registered_voices(nginx_pair, engine):
    """A voice registered through one replica speaks through the other, with the same
    audio as the engine's clone of the same file."""
    url, upstreams = nginx_pair
    jfk = REF_WAV.parent / "jfk_16k.wav"
    r = httpx.post(
        f"{url}/v1/audio/voices", timeout=120, files={"file": ("jfk.wav", jfk.read_bytes())}
    )
    assert r.status_code == 201, r.text
    vid, registered_on = r.json()["id"], r.headers["x-upstream"]
    expected = _pcm(engine(TEXT, engine.model.get_state_for_audio_prompt(str(jfk), truncate=True)))
    served: dict[str, bytes] = {}
    for _ in range(6):  # round robin: both replicas within a few requests
        r = httpx.post(
            f"{url}/v1/audio/speech",
            timeout=120,
            json={"model": "tts-1", "input": TEXT, "voice": vid, "response_format": "pcm"},
        )
        assert r.status_code == 200, r.text
        served[r.headers["x-upstream"]] = r.content
        if len(served) == 2:
            break
    assert set(served) == upstreams
    other = (upstreams - {registered_on}).pop()
    assert np.array_equal(np.frombuffer(served[other], "<i2"), expected)
    assert served[other] == served[registered_on]
    # The other replica lists it too (it reads the shared directory).
    listed = httpx.get(f"{url}/v1/audio/voices", timeout=10).json()["voices"]
    assert any(v["id"] == vid for v in listed)


# ----------------------------------------------------------------------------------------------
# Load, faults, shutdown
# ----------------------------------------------------------------------------------------------


def _slow_reader(srv: Server, text: str) -> tuple[socket.socket, bytes]:
    """A client that sends a speech request, reads its headers and then stops reading, with
    a tiny receive buffer: its stream stays in the engine (back-pressured). Returns the
    socket and what it read."""
    body = json.dumps(
        {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm"}
    ).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    sock.sendall(
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    return sock, head


def _rest_of_chunked_body(sock: socket.socket, head: bytes) -> bytes:
    """Read a chunked HTTP/1.1 response to its end: ``head`` is what was read so far."""
    sock.settimeout(120)
    data = head
    while b"\r\n0\r\n\r\n" not in data:
        piece = sock.recv(1 << 16)
        assert piece, "the server closed before the last chunk"
        data += piece
    body = data.split(b"\r\n\r\n", 1)[1]
    out = bytearray()
    while True:
        size_line, body = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2 :]


def test_slow_client_is_back_pressured_without_stalling_others(server, engine):
    """A client that stops reading holds only its own stream: the engine pauses it (its
    socket is full), the others are served in full meanwhile, and once it reads again it
    gets all of its audio, exactly."""
    sock, head = _slow_reader(server, LONG_TEXT)
    with sock:
        results: list[bytes] = []

        def other(i: int) -> None:
            text = f"{TEXT} Client {i}."
            r = httpx.post(
                f"{server.url}/v1/audio/speech",
                timeout=120,
                json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm"},
            )
            assert r.status_code == 200
            assert np.array_equal(np.frombuffer(r.content, "<i2"), _pcm(engine(text)))
            results.append(r.content)

        threads = [threading.Thread(target=other, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert len(results) == 3
        # The slow stream is still in the engine, paused, not finished nor dropped.
        assert server.metric("pocket_tts_active_streams") == 1
        audio = _rest_of_chunked_body(sock, head)
    assert np.array_equal(np.frombuffer(audio, "<i2"), _pcm(engine(LONG_TEXT)))


def test_full_engine_answers_503_with_retry_after(small, tmp_path):
    srv = Server(small, tmp_path, "--max-streams", "1", "--max-queue", "0")
    try:
        sock, _ = _slow_reader(srv, LONG_TEXT)
        with sock:  # holds the one slot
            assert srv.metric("pocket_tts_active_streams") == 1
            r = httpx.post(
                f"{srv.url}/v1/audio/speech",
                timeout=60,
                json={"model": "tts-1", "input": TEXT, "voice": "alloy"},
            )
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["type"] == "server_busy"
        # The slot comes back once the first client hangs up.
        deadline = time.monotonic() + 30
        while srv.metric("pocket_tts_active_streams") and time.monotonic() < deadline:
            time.sleep(0.05)
        r = httpx.post(
            f"{srv.url}/v1/audio/speech",
            timeout=120,
            json={"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "pcm"},
        )
        assert r.status_code == 200
    finally:
        assert srv.stop() in (0, -signal.SIGTERM)


def test_client_hang_up_cancels_its_stream(server):
    """A client that disconnects mid-stream frees its engine slot (the time it took is
    printed; docs/serving.md has the measured figures)."""
    before = server.metric("pocket_tts_streams_cancelled_total")
    with httpx.stream(
        "POST",
        f"{server.url}/v1/audio/speech",
        timeout=120,
        json={
            "model": "tts-1",
            "input": LONG_TEXT,
            "voice": "alloy",
            "response_format": "pcm",
        },
    ) as r:
        it = r.iter_bytes()
        next(it)
        assert server.metric("pocket_tts_active_streams") >= 1
    hung_up = time.perf_counter()
    deadline = time.monotonic() + 30
    while server.metric("pocket_tts_active_streams") and time.monotonic() < deadline:
        time.sleep(0.005)
    freed_ms = (time.perf_counter() - hung_up) * 1000
    assert server.metric("pocket_tts_active_streams") == 0
    assert server.metric("pocket_tts_streams_cancelled_total") == before + 1
    print(f"[hang-up] engine slot freed {freed_ms:.0f} ms after the client closed")


def test_metrics_and_access_log(server):
    httpx.post(
        f"{server.url}/v1/audio/speech",
        timeout=60,
        json={"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "pcm"},
    )
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        "pocket_tts_active_streams",
        "pocket_tts_queue_depth",
        "pocket_tts_audio_frames_total",
        "pocket_tts_time_to_first_audio_seconds_bucket",
        "pocket_tts_real_time_factor_bucket",
        "pocket_tts_requests_total",
    ):
        assert name in text, name
    assert server.metric("pocket_tts_time_to_first_audio_seconds_count") >= 1
    lines = [
        json.loads(line.split(": ", 1)[1])
        for line in server.log.read_text().splitlines()
        if line.startswith("INFO: {")
    ]
    speech = [r for r in lines if r.get("route") == "/v1/audio/speech" and r["status"] == 200]
    assert speech and {"ttfa_ms", "audio_s", "rtf", "format", "voice", "ms"} <= set(speech[-1])


def test_api_key_and_cors(small, tmp_path):
    srv = Server(small, tmp_path, "--api-key", "s3cret", "--cors-origin", "http://app.test")
    try:
        url = f"{srv.url}/v1/audio/speech"
        body = {"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "pcm"}
        r = httpx.post(url, json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert (
            httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        import openai

        client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="s3cret")
        audio = client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
        )
        assert len(audio.content) > 0
        assert httpx.get(f"{srv.url}/health").status_code == 200  # probes need no key
        pre = httpx.options(
            url, headers={"Origin": "http://app.test", "Access-Control-Request-Method": "POST"}
        )
        assert pre.headers.get("access-control-allow-origin") == "http://app.test"
        pre = httpx.options(
            url, headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in pre.headers
    finally:
        srv.stop()


def test_sigterm_lets_streams_finish_then_exits(small, engine, tmp_path):
    srv = Server(small, tmp_path, "--shutdown-timeout", "60")
    text = LONG_TEXT[:600]
    got: dict[str, bytes] = {}

    def listen() -> None:
        with httpx.stream(
            "POST",
            f"{srv.url}/v1/audio/speech",
            timeout=120,
            json={
                "model": "tts-1",
                "input": text,
                "voice": "alloy",
                "response_format": "pcm",
            },
        ) as r:
            got["audio"] = b"".join(r.iter_bytes())

    t = threading.Thread(target=listen)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.metric("pocket_tts_http_streams") and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{srv.url}/health", timeout=2)
    t.join(120)
    assert srv.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    np.testing.assert_array_equal(np.frombuffer(got["audio"], "<i2"), _pcm(engine(text)))


def test_serve_cli_errors(small):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pocket_tts", "serve", *args],
            capture_output=True,
            timeout=120,
            cwd="/",
            env={**os.environ, "POCKET_TTS_API_KEY": ""},
        )

    r = run("--port", "http")
    assert r.returncode == 2 and b"--port" in r.stderr
    r = run("--config", small, "--voice-alias", "alloy")
    assert r.returncode == 2 and b"NAME=VOICE" in r.stderr
    r = run("--config", small, "--reload")
    assert r.returncode == 2 and b"--reload" in r.stderr
    r = run(
        "--config", small, "--default-voice", "/nonexistent/voice.wav", "--port", str(_free_port())
    )
    assert r.returncode != 0 and b"voice.wav" in r.stderr


def test_uploads_are_cloned_from_30_s_unless_no_truncate(small, engine, tmp_path):
    """Issue 14.2: the server truncates voice prompts to 30 s by default; --no-truncate keeps
    all of a longer upload."""
    import soundfile as sf

    ref, rate = sf.read(REF_WAV, dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([ref, ref, ref, ref]), rate)  # 40 s
    model = engine.model
    states = {t: model.get_state_for_audio_prompt(str(long), truncate=t) for t in (True, False)}
    assert states[False].offset > states[True].offset
    for flags, truncate in (((), True), (("--no-truncate",), False)):
        srv = Server(small, tmp_path, *flags)
        try:
            r = httpx.post(
                f"{srv.url}/v1/audio/voices",
                timeout=300,
                files={"file": ("long.wav", long.read_bytes())},
            )
            r = httpx.post(
                f"{srv.url}/v1/audio/speech",
                timeout=120,
                json={
                    "model": "tts-1",
                    "input": TEXT,
                    "voice": r.json()["id"],
                    "response_format": "pcm",
                },
            )
            np.testing.assert_array_equal(
                np.frombuffer(r.content, "<i2"), _pcm(engine(TEXT, states[truncate]))
            )
        finally:
            srv.stop()


# ----------------------------------------------------------------------------------------------
# Property-based fuzzing against the server's own OpenAPI schema
# ----------------------------------------------------------------------------------------------


def test_no_generated_request_gets_a_5xx(small, tmp_path):
    """schemathesis (its CLI: its pytest plugin predates pytest 9) draws requests from the
    schema FastAPI publishes, valid and invalid (bodies, multipart uploads of random bytes,
    odd parameters), with stateful sequences through the voices API. None may get a 5xx, and
    the server stays up. Short limits keep every request's work bounded."""
    srv = Server(
        small,
        tmp_path,
        "--voices-dir",
        str(tmp_path / "voices"),
        "--max-text-chars",
        "160",
        "--request-timeout",
        "10",
        "--max-body-mb",
        "2",
    )
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "40",
                "--seed",
                "15",
                "--request-timeout",
                "60",
                "--generation-database",
                "none",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        print(run.stdout[-2500:])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout or "passed" in run.stdout, run.stdout[-3000:]
        assert srv.proc.poll() is None
        assert httpx.get(f"{srv.url}/health", timeout=10).status_code == 200
        # What the server saw (its access log): the run reached synthesis, not only 4xx.
        seen: dict[tuple[str, int], int] = {}
        for line in srv.log.read_text(errors="replace").splitlines():
            if line.startswith("INFO: {"):
                rec = json.loads(line[len("INFO: ") :])
                key = (
                    rec["path"] if rec["path"] in ("/tts", "/v1/audio/speech") else "other",
                    rec["status"],
                )
                seen[key] = seen.get(key, 0) + 1
        print("[schemathesis] requests by (route, status):", sorted(seen.items()))
        assert not any(status >= 500 for _, status in seen)
        assert seen.get(("/v1/audio/speech", 200), 0) + seen.get(("/tts", 200), 0) > 0
    finally:
        assert srv.stop() in (0, -signal.SIGTERM), srv.log.read_text()[-3000:]
