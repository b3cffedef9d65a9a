"""The HTTP server: the reference's ``/tts`` and web page, OpenAI's ``/v1/audio/speech``,
a voices API and ``/metrics``, as small handlers over one model's engine.

Every request's audio is one engine stream (:meth:`TTSModel.agenerate_audio_stream`), so
concurrent requests share each pass over the weights. A response is started once its first
audio exists: errors found until then (a full engine, bad text) are proper 4xx/503 answers;
after that the audio streams, encoded chunk by chunk (:mod:`pocket_tts.audio.encode`). A
client that goes away cancels its stream; a stream longer than the request time limit ends.

Errors under ``/v1`` use OpenAI's envelope ``{"error": {"message", "type", "code"}}``;
``/tts`` answers like the reference (``{"detail": ...}``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..audio.encode import FORMATS, StreamEncoder, available_formats
from ..audio.read import AudioError
from ..engine import EngineFullError
from ..hub import HubError, default_voice_for_language
from ..voice import VoiceEncodingCancelled, VoiceStateError
from .metrics import ServerMetrics
from .voices import DEFAULT_VOICE_ID, UnknownVoiceError, VoiceLibrary

__all__ = ["ApiError", "ServerSettings", "create_app"]

logger = logging.getLogger("pocket_tts.server")
access_logger = logging.getLogger("pocket_tts.server.access")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The reference server's CORS origins.
REFERENCE_CORS_ORIGINS = (
    "http://localhost:3000",
    "https://pod1-10007.internal.kyutai.org",
    "https://kyutai.org",
)
#: Model ids listed by ``GET /v1/models``; any model name is accepted by the speech route.
MODEL_IDS = ("pocket-tts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
_DEFAULT_TEXT = "Hello world. I am Pocket TTS, running on your CPU without PyTorch."
_DEFAULT_TEXT_FOR_LANGUAGE = {
    "english": _DEFAULT_TEXT,
    "french": "Bonjour. Je suis Pocket TTS, et je tourne sur votre processeur.",
    "german": "Hallo. Ich bin Pocket TTS und laufe auf deinem Prozessor.",
    "spanish": "Hola. Soy Pocket TTS y funciono en tu procesador.",
    "italian": "Ciao. Sono Pocket TTS e funziono sul tuo processore.",
    "portuguese": "Olá. Eu sou o Pocket TTS e funciono no seu processador.",
    "dutch": "Hallo. Ik ben Pocket TTS en ik draai op je processor.",
}


@dataclass
class ServerSettings:
    """What ``pocket-tts serve`` configures (the defaults are its defaults)."""

    #: The voice of requests that name none: whatever ``get_state_for_audio_prompt`` takes
    #: (None: the language's predefined voice, when the model has predefined voices).
    default_voice: str | None = None
    #: Where registered voices are kept (None: in memory only, lost at exit).
    voices_dir: str | None = None
    #: Extra voice names (OpenAI's by default) -> predefined names or ids.
    voice_aliases: dict[str, str] | None = None
    #: Longest ``input`` / ``text``, in characters (OpenAI's limit).
    max_text_chars: int = 4096
    #: Largest request body (uploads included), in bytes.
    max_body_bytes: int = 32 * 1024 * 1024
    #: A stream is ended after this many seconds.
    request_timeout: float = 600.0
    #: Seconds a client is told to wait (``Retry-After``) when the engine is full.
    retry_after: int = 2
    #: Required as ``Authorization: Bearer <key>`` (None: no authentication).
    api_key: str | None = None
    cors_origins: tuple[str, ...] = REFERENCE_CORS_ORIGINS
    #: Clone uploaded and URL audio from its first 30 s (False: all of it, slower).
    truncate_prompts: bool = True
    #: Silence appended to ``/tts``'s WAV, as the reference's writer does.
    tts_trailing_silence: float = 0.2
    language: str | None = None


class ApiError(Exception):
    """An error answer: HTTP ``status``, a message, OpenAI's ``type`` and ``code``."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers or {}


class SpeechRequest(BaseModel):
    """OpenAI's ``POST /v1/audio/speech`` body."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, examples=["tts-1"])
    input: str = Field(examples=["Hello world. This is Pocket TTS."])
    voice: str | dict[str, str] = Field(examples=["alloy", "alba", {"id": "default"}])
    # A string checked by the handler (its 400 names the formats); the schema lists them.
    response_format: str = Field("mp3", json_schema_extra={"enum": list(FORMATS)})
    speed: float = 1.0
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = None


# ----------------------------------------------------------------------------------------------
# Middleware (pure ASGI: nothing buffers a streamed body)
# ----------------------------------------------------------------------------------------------


class _Limits:
    """Body size limit, API key, and one structured access-log line per request."""

    def __init__(self, app: Any, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        info: dict[str, Any] = {}
        scope.setdefault("state", {})["pocket_tts"] = info
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])

        async def send_logged(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            key = self.settings.api_key
            if key is not None and path not in ("/", "/health") and scope["method"] != "OPTIONS":
                given = headers.get(b"authorization", b"").decode("latin-1")
                if given != f"Bearer {key}":
                    response = _error_response(
                        path,
                        ApiError(
                            401,
                            "missing or wrong API key: send the header "
                            "'Authorization: Bearer <key>'",
                            "authentication_error",
                            "invalid_api_key",
                        ),
                    )
                    await response(scope, receive, send_logged)
                    return
            limit = self.settings.max_body_bytes
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                response = _error_response(path, _too_large(limit))
                await response(scope, receive, send_logged)
                return
            received = 0
            over = False
            started: list[bool] = []

            async def receive_limited() -> Any:
                nonlocal received, over
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:  # a chunked body without Content-Length
                        over = True
                        raise StarletteHTTPException(413, _too_large(limit).message)
                return message

            async def send_unless_over(message: Any) -> None:
                # The body parser may turn the error above into its own (the multipart
                # parser answers 400): once over the limit, the answer is the 413 below.
                if not over:
                    started.append(True)
                    await send_logged(message)

            try:
                await self.app(scope, receive_limited, send_unless_over)
            except Exception:
                if not over or started:
                    raise
            if over and not started:
                response = _error_response(path, _too_large(limit))
                await response(scope, receive, send_logged)
        finally:
            route = info.get("route", path if path in _ROUTES else "other")
            self.metrics.requests.labels(route, str(status["code"])).inc()
            record = {
                "method": scope["method"],
                "path": path,
                "status": status["code"],
                "ms": round((time.perf_counter() - start) * 1000, 1),
                "client": (scope.get("client") or ("", 0))[0],
                **info,
            }
            access_logger.info(json.dumps(record, default=str))


_ROUTES = {"/", "/health", "/tts", "/metrics", "/v1/models", "/v1/audio/speech", "/v1/audio/voices"}


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the request body is larger than the limit of {limit} bytes "
        "(pocket-tts serve --max-body-mb)",
        code="request_too_large",
    )


def _error_response(path: str, exc: ApiError) -> JSONResponse:
    if path.startswith("/v1"):
        body: dict[str, Any] = {
            "error": {"message": exc.message, "type": exc.type, "code": exc.code, "param": None}
        }
    else:
        body = {"detail": exc.message}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


# ----------------------------------------------------------------------------------------------
# The app
# ----------------------------------------------------------------------------------------------


def create_app(model: Any, settings: ServerSettings | None = None) -> FastAPI:
    """The server's ASGI app over a loaded :class:`~pocket_tts.TTSModel`. The default voice
    is resolved here, so a voice that cannot be loaded fails at start-up."""
    settings = settings or ServerSettings()
    metrics = ServerMetrics(model.engine)
    voices = VoiceLibrary(
        model, settings.voices_dir, settings.voice_aliases, truncate=settings.truncate_prompts
    )
    default_voice = _resolve_default_voice(model, voices, settings)
    voices.default_state = default_voice
    app = FastAPI(
        title="Pocket TTS (pocket-tts-fast)",
        description="Streaming text-to-speech: the reference's /tts, OpenAI's speech API, voices.",
        version=__version__,
    )
    app.state.model = model
    app.state.voices = voices
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(_Limits, settings=settings, metrics=metrics)

    # ------------------------------------------------------------------ errors

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request.url.path, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = ApiError(
            exc.status_code,
            str(exc.detail),
            "invalid_request_error" if exc.status_code < 500 else "server_error",
        )
        return _error_response(request.url.path, err)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith("/v1"):
            return JSONResponse({"detail": _jsonable(exc.errors())}, status_code=422)
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error_response(request.url.path, ApiError(400, "; ".join(parts)))

    # ------------------------------------------------------------------ the reference's API

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        """The web page."""
        page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return page.replace("DEFAULT_TEXT_PROMPT", _default_text(settings.language))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """``{"status": "healthy"}``, as the reference."""
        return {"status": "healthy"}

    @app.post("/tts")
    async def tts(
        request: Request,
        text: Annotated[str, Form(examples=["Hello world."])],
        voice_url: Annotated[str | None, Form(examples=["alba"])] = None,
        voice_wav: Annotated[UploadFile | None, File()] = None,
    ) -> StreamingResponse:
        """The reference's route: multipart ``text``, optional ``voice_url`` (a predefined
        name, http(s):// or hf://) or ``voice_wav`` (an upload, its first 30 s cloned);
        answers a chunked 16-bit 24 kHz WAV."""
        request.state.pocket_tts["route"] = "/tts"
        if not text.strip():
            raise ApiError(400, "Text cannot be empty")
        if voice_url is not None and voice_wav is not None:
            raise ApiError(400, "Cannot provide both voice_url and voice_wav")
        _check_text_length(text, settings)
        if voice_url is not None:
            if not (
                voice_url.startswith(("http://", "https://", "hf://"))
                or voice_url in voices.predefined()
            ):
                raise ApiError(400, "voice_url must start with http://, https://, or hf://")
            state = await _resolve_voice(voices, voice_url)
        elif voice_wav is not None:
            data = await voice_wav.read()
            state = await _clone_upload(
                model, data, voice_wav.filename or "voice.wav", settings.truncate_prompts
            )
        elif default_voice is not None:
            state = default_voice
        else:
            raise ApiError(500, "The server has no default voice loaded.")
        encoder = StreamEncoder("wav", model.sample_rate, settings.tts_trailing_silence)
        return await _stream(
            request,
            model,
            state,
            text,
            encoder,
            False,
            metrics,
            settings,
            {"Content-Disposition": "attachment; filename=generated_speech.wav"},
        )

    # ------------------------------------------------------------------ OpenAI's API

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """The model ids clients may name (every name is served by the loaded model)."""
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "pocket-tts"}
                for m in MODEL_IDS
            ],
        }

    @app.post("/v1/audio/speech")
    async def speech(request: Request, body: SpeechRequest) -> StreamingResponse:
        """OpenAI's speech API, streamed in every format (``stream_format: "sse"``: base64
        ``speech.audio.delta`` events, then ``speech.audio.done``)."""
        info = request.state.pocket_tts
        info.update(route="/v1/audio/speech", format=body.response_format)
        if body.response_format not in FORMATS:
            raise ApiError(
                400,
                f"response_format {body.response_format!r} is not supported; "
                f"use one of {', '.join(FORMATS)}",
                code="unsupported_format",
            )
        if body.response_format not in available_formats():
            raise ApiError(
                400,
                f"response_format {body.response_format!r} needs PyAV on the "
                "server: pip install av",
                code="unsupported_format",
            )
        if not 0.25 <= body.speed <= 4.0:
            raise ApiError(400, f"speed must be between 0.25 and 4.0, got {body.speed}")
        if body.speed != 1.0:
            raise ApiError(
                400,
                "speed other than 1.0 is not supported yet (Pocket TTS has no "
                "time-stretch); send speed 1.0",
                code="unsupported_speed",
            )
        if not body.input.strip():
            raise ApiError(400, "input cannot be empty")
        _check_text_length(body.input, settings)
        voice_name = body.voice.get("id") if isinstance(body.voice, dict) else body.voice
        if not voice_name:
            raise ApiError(400, 'voice must be a name, an id, or {"id": ...}')
        info["voice"] = voice_name
        state = await _resolve_voice(voices, voice_name)
        encoder = StreamEncoder(body.response_format, model.sample_rate)
        return await _stream(
            request,
            model,
            state,
            body.input,
            encoder,
            body.stream_format == "sse",
            metrics,
            settings,
            {},
        )

    # ------------------------------------------------------------------ voices

    @app.get("/v1/audio/voices")
    async def list_voices() -> dict[str, Any]:
        """Predefined voices, aliases (OpenAI's names) and registered voices."""
        listed: list[dict[str, Any]] = []
        if default_voice is not None:
            listed.append(
                {
                    "id": DEFAULT_VOICE_ID,
                    "name": f"default ({settings.default_voice})",
                    "type": "default",
                }
            )
        listed += [{"id": v, "name": v, "type": "predefined"} for v in voices.predefined()]
        listed += [
            {"id": a, "name": a, "type": "alias", "voice": v}
            for a, v in sorted(voices.aliases.items())
        ]
        listed += [{**r, "type": "registered"} for r in voices.registered()]
        return {
            "object": "list",
            "voices": listed,
            "default": DEFAULT_VOICE_ID if default_voice is not None else None,
        }

    @app.post("/v1/audio/voices", status_code=201)
    async def register_voice(
        request: Request,
        file: Annotated[UploadFile, File()],
        name: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        """Register a voice from an audio file (its first 30 s) or a voice-state
        ``.safetensors``; answers its record, whose ``id`` ``/v1/audio/speech`` takes."""
        request.state.pocket_tts["route"] = "/v1/audio/voices"
        data = await file.read()
        if not data:
            raise ApiError(400, "the uploaded file is empty")
        stop = threading.Event()
        try:
            record = await _guard_voice(
                run_in_threadpool(voices.register, data, file.filename or "voice.wav", name, stop)
            )
        finally:
            stop.set()  # a client gone mid-encoding stops it
        return {"object": "voice", **record}

    @app.delete("/v1/audio/voices/{voice_id}")
    async def delete_voice(request: Request, voice_id: str) -> dict[str, Any]:
        """Forget a registered voice."""
        request.state.pocket_tts["route"] = "/v1/audio/voices"
        try:
            voices.delete(voice_id)
        except UnknownVoiceError as exc:
            raise ApiError(404, str(exc), code="voice_not_found") from exc
        return {"id": voice_id, "object": "voice", "deleted": True}

    # ------------------------------------------------------------------ operations

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _default_text(language: str | None) -> str:
    lang = language or "english"
    return next((t for k, t in _DEFAULT_TEXT_FOR_LANGUAGE.items() if k in lang), _DEFAULT_TEXT)


def _check_text_length(text: str, settings: ServerSettings) -> None:
    if len(text) > settings.max_text_chars:
        raise ApiError(
            400,
            f"the text is {len(text)} characters long; the limit is "
            f"{settings.max_text_chars} (pocket-tts serve --max-text-chars)",
            code="text_too_long",
        )


def _resolve_default_voice(model: Any, voices: VoiceLibrary, settings: ServerSettings) -> Any:
    if settings.default_voice is not None:
        try:
            return voices.resolve(settings.default_voice)
        except UnknownVoiceError:
            return model.get_state_for_audio_prompt(
                settings.default_voice, truncate=settings.truncate_prompts
            )
    if not voices.predefined():
        return None
    name = default_voice_for_language(settings.language)
    settings.default_voice = name
    return voices.resolve(name)


async def _guard_voice(work: Any) -> Any:
    """Await voice work, turning the ways a voice can be bad into 4xx answers."""
    try:
        return await work
    except UnknownVoiceError as exc:
        raise ApiError(400, str(exc), code="voice_not_found") from exc
    except (AudioError, VoiceStateError, ValueError, TypeError) as exc:
        raise ApiError(400, f"cannot use this voice: {exc}", code="invalid_voice") from exc
    except VoiceEncodingCancelled as exc:
        raise ApiError(499, "cancelled") from exc
    except HubError as exc:
        raise ApiError(400, f"cannot fetch this voice: {exc}", code="voice_unavailable") from exc


async def _resolve_voice(voices: VoiceLibrary, name: str) -> Any:
    return await _guard_voice(run_in_threadpool(voices.resolve, name))


async def _clone_upload(model: Any, data: bytes, filename: str, truncate: bool) -> Any:
    import tempfile

    if not data:
        raise ApiError(400, "the uploaded voice file is empty")
    suffix = Path(filename).suffix or ".wav"

    def clone() -> Any:
        with tempfile.NamedTemporaryFile(suffix=suffix, prefix="pocket-tts-voice-") as tmp:
            tmp.write(data)
            tmp.flush()
            return model.get_state_for_audio_prompt(tmp.name, truncate=truncate)

    return await _guard_voice(run_in_threadpool(clone))


async def _stream(
    request: Request,
    model: Any,
    voice: Any,
    text: str,
    encoder: StreamEncoder,
    sse: bool,
    metrics: ServerMetrics,
    settings: ServerSettings,
    headers: dict[str, str],
) -> StreamingResponse:
    """Start the stream, wait for its first audio (or the reason there is none), then answer
    with the rest streamed."""
    info = request.state.pocket_tts
    received = time.perf_counter()
    audio = model.agenerate_audio_stream(voice, text)
    try:
        first = await audio.__anext__()
    except StopAsyncIteration:
        first = None
    except EngineFullError as exc:
        raise ApiError(
            503,
            f"the server is at capacity ({exc}); retry after {settings.retry_after} s",
            "server_busy",
            "engine_full",
            {"Retry-After": str(settings.retry_after)},
        ) from exc
    except (ValueError, TypeError) as exc:
        raise ApiError(400, f"cannot speak this text: {exc}", code="invalid_text") from exc
    ttfa = time.perf_counter() - received
    metrics.ttfa.observe(ttfa)
    info["ttfa_ms"] = round(ttfa * 1000, 1)
    deadline = received + settings.request_timeout
    rate = model.sample_rate

    def frame(data: bytes) -> bytes:
        if not sse:
            return data
        if not data:
            return b""
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
        return f"data: {json.dumps(event)}\n\n".encode()

    async def body() -> Any:
        samples = 0
        complete = False
        metrics.streams_open.inc()
        try:
            head = encoder.start()
            if first is not None:
                samples += len(first)
                head += encoder.encode(first)
            yield frame(head)
            async for chunk in audio:
                samples += len(chunk)
                metrics.frames.inc(len(chunk) / 1920)
                yield frame(encoder.encode(chunk))
                if time.perf_counter() > deadline:
                    info["timed_out"] = True
                    break
            else:
                complete = True
            yield frame(encoder.finish())
            if sse:
                tokens = len(text.split())
                done = {
                    "type": "speech.audio.done",
                    "usage": {
                        "input_tokens": tokens,
                        "output_tokens": samples // 1920,
                        "total_tokens": tokens + samples // 1920,
                    },
                }
                yield f"data: {json.dumps(done)}\n\n".encode()
        finally:
            with anyio.CancelScope(shield=True):
                await audio.aclose()
            encoder.close()
            metrics.streams_open.dec()
            seconds = samples / rate
            elapsed = time.perf_counter() - received
            metrics.audio_seconds.inc(seconds)
            if not complete:
                metrics.cancelled.inc()
            if seconds > 0:
                metrics.rtf.observe(elapsed / seconds)
            info.update(
                audio_s=round(seconds, 3),
                complete=complete,
                rtf=round(elapsed / seconds, 3) if seconds else None,
            )

    media = "text/event-stream" if sse else encoder.content_type
    return StreamingResponse(
        body(), media_type=media, headers={**headers, "Cache-Control": "no-store"}
    )
