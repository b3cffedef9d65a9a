"""Command line: ``pocket-tts generate`` and ``pocket-tts export-voice`` (also
``python -m pocket_tts``), mirroring the reference's flags.

Logs and the progress bar go to stderr, so ``-o -`` can stream a WAV to stdout as the chunks
are decoded."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from .config import available_languages
from .hub import HubOfflineError, default_voice_for_language

logger = logging.getLogger("pocket_tts")

DEFAULT_TEXT = "Hello world. I am Pocket TTS, running on your CPU without PyTorch."
DEFAULT_VOICE_FOR_CUSTOM_CONFIG = "hf://kyutai/tts-voices/alba-mackenna/casual.wav"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int(text, 1)


def _non_negative_int(text: str) -> int:
    return _int(text, 0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("must be a number, got nan")
    return value


def _between(kind: type, low: float, high: float) -> Any:
    """An argparse type: an int or a float (``kind``) within ``[low, high]``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {kind.__name__} {low}..{high}, got {text!r}"
            ) from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _seed(text: str) -> int:
    from .tts_model import _torch_seed

    try:
        return _torch_seed(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            str(exc)
            if text.strip().lstrip("+-").isdigit()
            else f"expected an integer, got {text!r}"
        ) from None


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--language", help=f"packaged config: {', '.join(available_languages())}")
    p.add_argument("--config", help="config YAML (local path, https:// or hf://)")
    p.add_argument("--weights", help="local safetensors checkpoint overriding the config's")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16", "int8"],
        help="storage of the flow-LM weights",
    )
    p.add_argument(
        "--quantize", action="store_true", help="the reference's flag: same as --dtype int8"
    )
    p.add_argument(
        "--no-quantize", action="store_true", help="the reference's flag: keep --dtype (default)"
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="the reference's flag: only cpu (this engine has no GPU path)",
    )
    p.add_argument(
        "--checkpoint",
        help="the reference's training checkpoint (.pt) flag: not supported without torch",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no logs or progress")


def _check_reference_flags(args: argparse.Namespace) -> None:
    """The reference's flags this engine takes, and clear errors for those it cannot."""
    if args.device.strip().lower() != "cpu":
        raise CliError(f"--device {args.device}: this engine runs on the CPU only (--device cpu)")
    if args.checkpoint is not None:
        raise CliError(
            "--checkpoint: training checkpoints (.pt) need torch; export them to safetensors "
            "with the reference (POCKET_TTS_SAVE_WEIGHTS=1) and pass --weights FILE"
        )
    if args.quantize and args.no_quantize:
        raise CliError("--quantize and --no-quantize contradict each other: give one")
    if args.quantize:
        args.dtype = "int8"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pocket-tts`` command."""
    from . import __version__

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="pocket-tts", description=__doc__.splitlines()[0], formatter_class=fmt
    )
    parser.add_argument("--version", action="version", version=f"pocket-tts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="text to a WAV file (or stdout)", formatter_class=fmt)
    g.add_argument("text_arg", nargs="?", metavar="TEXT", help="text to speak (or use --text)")
    g.add_argument("--text", help="text to speak; '-' reads stdin")
    g.add_argument("--text-file", help="read the text from this file")
    g.add_argument(
        "--voice",
        help="predefined voice name, audio file, voice-state .safetensors, URL, hf:// path, "
        "or 'none' for no voice prompt",
    )
    _model_args(g)
    g.add_argument("-o", "--output-path", default="./tts_output.wav", help="'-' for stdout")
    g.add_argument(
        "--temperature",
        type=_non_negative_float,
        default=None,
        help="sampling temperature (None: the config's, 0.7 for the released ones)",
    )
    g.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="noise seed, as torch.manual_seed takes (None: a fresh one per run)",
    )
    g.add_argument(
        "--frames-after-eos",
        type=_non_negative_int,
        default=None,
        help="frames generated after the end of speech (None: guessed per chunk)",
    )
    g.add_argument(
        "--eos-threshold",
        type=_number,
        default=None,
        help="end-of-speech logit threshold (None: the config's)",
    )
    g.add_argument(
        "--noise-clamp",
        type=_number,
        default=None,
        help="clamp of the flow head's noise (None: no clamp)",
    )
    g.add_argument(
        "--sampler-decode-steps",
        type=_positive_int,
        default=1,
        help="flow-head integration steps per frame",
    )
    g.add_argument("--lsd-decode-steps", type=_positive_int, default=None, help=argparse.SUPPRESS)
    g.add_argument(
        "--max-tokens",
        type=_positive_int,
        default=50,
        help="most tokens in one text chunk",
    )
    g.add_argument(
        "--truncate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clone a voice from the first 30 s of its audio (--no-truncate: all of it)",
    )

    e = sub.add_parser(
        "export-voice", help="audio prompt to a voice-state .safetensors file", formatter_class=fmt
    )
    e.add_argument("audio_path", help="audio prompt (wav/flac/ogg, any rate), URL or hf:// path")
    e.add_argument("export_path", help="the voice-state .safetensors file to write")
    e.add_argument(
        "--truncate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clone from the first 30 s of the audio (--no-truncate: all of it)",
    )
    _model_args(e)

    s = sub.add_parser(
        "serve",
        help="HTTP server: the reference's /tts, OpenAI's /v1/audio/speech, voices",
        formatter_class=fmt,
    )
    s.add_argument("--host", default="localhost", help="address to bind (0.0.0.0: every one)")
    s.add_argument("--port", type=_between(int, 0, 65535), default=8000, help="port to bind")
    s.add_argument(
        "--default-voice",
        help="voice of requests that name none: a predefined "
        "name, audio file, voice-state .safetensors, URL or hf:// path "
        "(default: the language's voice)",
    )
    s.add_argument(
        "--voices-dir",
        help="keep registered voices in this folder (replicas may "
        "share it); default: in memory only",
    )
    s.add_argument(
        "--voice-alias",
        action="append",
        default=[],
        metavar="NAME=VOICE",
        help="map a voice name (e.g. an OpenAI one) onto a voice; repeatable",
    )
    s.add_argument(
        "--max-streams",
        type=_between(int, 1, 1024),
        default=16,
        help="streams generated at once (the engine's batch)",
    )
    s.add_argument(
        "--max-queue",
        type=_between(int, 0, 100000),
        default=64,
        help="requests waiting for a stream; beyond: 503 with Retry-After",
    )
    s.add_argument(
        "--max-text-chars",
        type=_between(int, 1, 10**7),
        default=4096,
        help="longest text of one request",
    )
    s.add_argument(
        "--max-body-mb",
        type=_between(float, 0.001, 4096),
        default=32.0,
        help="largest request body (uploads included)",
    )
    s.add_argument(
        "--request-timeout",
        type=_between(float, 0.1, 86400),
        default=600.0,
        help="seconds after which a stream is ended",
    )
    s.add_argument(
        "--api-key",
        default=os.environ.get("POCKET_TTS_API_KEY"),
        help="require 'Authorization: Bearer KEY' (env POCKET_TTS_API_KEY)",
    )
    s.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="allowed browser origin, repeatable ('*': any); default: the reference's list",
    )
    s.add_argument(
        "--shutdown-timeout",
        type=_between(float, 0, 3600),
        default=30.0,
        help="on SIGTERM, seconds in-flight streams may take to finish",
    )
    s.add_argument(
        "--truncate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clone uploaded and URL voices from the first 30 s of their audio "
        "(--no-truncate: all of it)",
    )
    s.add_argument(
        "--temperature",
        type=_non_negative_float,
        default=None,
        help="sampling temperature of every request (None: the config's; 0: deterministic)",
    )
    s.add_argument(
        "--eos-threshold",
        type=_number,
        default=None,
        help="end-of-speech logit threshold (None: the config's)",
    )
    s.add_argument(
        "--noise-clamp",
        type=_number,
        default=None,
        help="clamp of the flow head's noise (None: no clamp)",
    )
    s.add_argument(
        "--reload",
        action="store_true",
        help="the reference's flag: not supported (the model is loaded once)",
    )
    s.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (one JSON access line per request at info)",
    )
    _model_args(s)

    c = sub.add_parser(
        "clear-cache",
        help="delete the packed-weights cache (~/.cache/pocket_tts/packed; rebuilt on next load)",
    )
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .server import ServerSettings, create_app
    except ImportError as exc:
        raise CliError(
            f"pocket-tts serve needs the server extra ({exc.name} is missing): "
            "pip install 'pocket-tts-fast[server]'"
        ) from exc
    if args.reload:
        raise CliError("--reload is not supported: the model is loaded once per process")
    aliases: dict[str, str] | None = None
    if args.voice_alias:
        from .server.voices import OPENAI_VOICES

        aliases = dict(OPENAI_VOICES)
        for item in args.voice_alias:
            name, sep, voice = item.partition("=")
            if not sep or not name.strip() or not voice.strip():
                raise CliError(f"--voice-alias {item!r}: expected NAME=VOICE")
            aliases[name.strip()] = voice.strip()
    model = _load_model(
        args, temp=args.temperature, noise_clamp=args.noise_clamp, eos_threshold=args.eos_threshold
    )
    model.engine.configure(max_streams=args.max_streams, max_waiting=args.max_queue)
    settings = ServerSettings(
        default_voice=args.default_voice,
        voices_dir=args.voices_dir,
        voice_aliases=aliases,
        max_text_chars=args.max_text_chars,
        max_body_bytes=int(args.max_body_mb * 2**20),
        request_timeout=args.request_timeout,
        api_key=args.api_key or None,
        language=args.language,
        truncate_prompts=args.truncate,
    )
    if args.cors_origin:
        settings.cors_origins = tuple(args.cors_origin)
    app = create_app(model, settings)
    logging.getLogger("pocket_tts.server").setLevel(args.log_level.upper())
    if not args.quiet:
        print(
            f"pocket-tts serve: http://{args.host}:{args.port}/ (Ctrl-C or SIGTERM to stop)",
            file=sys.stderr,
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # pocket_tts.server.access logs one JSON line per request
        timeout_graceful_shutdown=args.shutdown_timeout,
    )
    return 0


def _clear_cache(args: argparse.Namespace) -> int:
    from .checkpoint import cache

    cache.wait_for_saves()
    files, size = cache.clear()
    if not args.quiet:
        print(f"removed {files} files ({size / 2**20:.1f} MB) from {cache.folder()}")
    return 0


def _read_text(args: argparse.Namespace) -> str:
    sources = [s for s in (args.text_arg, args.text, args.text_file) if s is not None]
    if len(sources) > 1:
        raise CliError("give the text once: as an argument, --text or --text-file")
    if args.text_file is not None:
        try:
            return Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read --text-file {args.text_file}: {exc}") from exc
    text = sources[0] if sources else DEFAULT_TEXT
    if text == "-":
        text = sys.stdin.read()
    return text


def _load_model(args: argparse.Namespace, **kw):
    from .tts_model import TTSModel

    _check_reference_flags(args)
    if args.language and args.config:
        raise CliError("--language and --config are mutually exclusive")
    return TTSModel.load_model(
        language=args.language,
        config=args.config,
        weights=args.weights,
        dtype=args.dtype,
        **kw,
    )


def _default_voice(args: argparse.Namespace) -> str:
    if args.config or args.weights:
        return DEFAULT_VOICE_FOR_CUSTOM_CONFIG
    return default_voice_for_language(args.language)


class _Progress:
    """A one-line progress bar on stderr for multi-chunk texts."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False

    def __call__(self, index: int, total: int, text: str) -> None:
        if not self.enabled or total < 2:
            return
        width = 30
        done = int(width * index / total)
        bar = "#" * done + "-" * (width - done)
        sys.stderr.write(f"\r[{bar}] chunk {index + 1}/{total}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _generate(args: argparse.Namespace) -> int:
    from .audio.wav import StreamingWAVWriter

    text = _read_text(args)
    if not text.strip():
        raise CliError("the text is empty")
    model = _load_model(
        args,
        temp=args.temperature,
        sampler_decode_steps=args.lsd_decode_steps or args.sampler_decode_steps,
        noise_clamp=args.noise_clamp,
        eos_threshold=args.eos_threshold,
        seed=args.seed,
    )
    voice_arg = args.voice or _default_voice(args)
    voice = None
    if voice_arg.lower() != "none":
        try:
            voice = model.get_state_for_audio_prompt(voice_arg, truncate=args.truncate)
        except HubOfflineError as exc:
            if args.voice:
                raise
            raise CliError(
                f"no --voice given, and the default voice for a custom config, {voice_arg}, "
                f"cannot be downloaded: {exc.reason}. Pass --voice (a local audio file, a "
                "voice-state .safetensors, or 'none')."
            ) from exc
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    stop = threading.Event()
    to_stdout = args.output_path == "-"
    if not to_stdout:
        parent = Path(args.output_path).resolve().parent
        if not parent.is_dir():
            raise CliError(f"output folder does not exist: {parent}")
    t0 = time.perf_counter()
    first_audio = None
    samples = 0
    stream: Generator = model.generate_audio_stream(
        voice,
        text,
        max_tokens=args.max_tokens,
        frames_after_eos=args.frames_after_eos,
        stop=stop,
        on_text_chunk=progress,
    )
    dest = sys.stdout.buffer if to_stdout else args.output_path
    try:
        with StreamingWAVWriter(dest, model.sample_rate) as writer:
            for chunk in stream:
                if first_audio is None:
                    first_audio = time.perf_counter() - t0
                writer.write(chunk)
                samples += len(chunk)
    except BrokenPipeError:
        stop.set()
        # The reader went away (e.g. `| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        stream.close()
        progress.close()
    elapsed = time.perf_counter() - t0
    seconds = samples / model.sample_rate
    if not args.quiet:
        rtf = elapsed / seconds if seconds else float("nan")
        ttfa = (first_audio or 0.0) * 1000
        print(
            f"{seconds:.2f} s of audio in {elapsed:.2f} s: time to first audio {ttfa:.0f} ms, "
            f"real-time factor {rtf:.3f} ({1 / rtf if rtf else 0:.1f}x faster than real time)"
            + ("" if to_stdout else f" -> {args.output_path}"),
            file=sys.stderr,
        )
    return 0


def _export_voice(args: argparse.Namespace) -> int:
    from .voice import export_model_state

    model = _load_model(args)
    state = model.get_state_for_audio_prompt(args.audio_path, truncate=args.truncate)
    export_model_state(state, args.export_path)
    if not args.quiet:
        print(f"voice state ({state.offset} positions) -> {args.export_path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pocket-tts``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "clear-cache":
            return _clear_cache(args)
        if args.command == "serve":
            return _serve(args)
        return _export_voice(args)
    except CliError as exc:
        print(f"pocket-tts: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an unbuilt source tree: one line, not a traceback
        print(f"pocket-tts: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, TypeError) as exc:
        print(f"pocket-tts: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
