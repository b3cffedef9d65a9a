"""The user-facing model: text in, 24 kHz audio out, streamed in 80 ms frames.

The drop-in API of the reference ``pocket_tts.TTSModel`` 4.0.1 (see the docs of each method).
It delegates every stage of the data path: text -> chunks (:mod:`.text.prepare`) -> tokens
(:mod:`.text.tokenizer`) -> flow LM -> latents -> Mimi decoder -> audio, one text chunk at a
time: its state and per-frame stages from :mod:`.pipeline`, run by the model's
:class:`~pocket_tts.engine.Engine` (two threads that batch every concurrent call's frames).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _native, hub
from .audio.prompt import _is_safetensors_source
from .checkpoint.loader import load_weights
from .checkpoint.storage import STORAGE_DTYPES
from .config import CONFIGS_DIR, Config, load_config
from .engine import Engine
from .flow_lm import FlowLM
from .mimi import Mimi
from .pipeline import ChunkStats, Sampling, Stages
from .text.prepare import TextChunk, TextOptions, chunk_text_for_generation
from .text.tokenizer import build_tokenizer
from .voice import VoiceState, export_model_state, import_model_state, voice_state_from_audio

logger = logging.getLogger("pocket_tts")

DEFAULT_LANGUAGE = "english"
DEFAULT_SAMPLER_DECODE_STEPS = 1
MAX_TOKEN_PER_CHUNK = 50
_WEIGHT_DTYPES = tuple(STORAGE_DTYPES)

_TRAINING_CHECKPOINTS_NEED_TORCH = (
    "Training checkpoints (.pt) need torch; export them to safetensors with the "
    "reference (POCKET_TTS_SAVE_WEIGHTS=1) and pass weights=... instead."
)

__all__ = ["AudioArray", "TTSModel", "export_model_state"]


class AudioArray(np.ndarray):
    """Float32 audio samples: a numpy array that also answers the ``torch.Tensor`` calls that
    wrappers written for the reference make on its audio (``.numpy()``, ``.detach()``,
    ``.cpu()``, ``.clamp(min, max)``, ``.to(dtype)``), each returning numpy data. Everything
    else is plain numpy (``.shape``, arithmetic, ``np.concatenate``, ...)."""

    def numpy(self) -> np.ndarray:
        """The samples as a plain ``ndarray`` sharing this memory, like ``Tensor.numpy()``."""
        return self.view(np.ndarray)

    def detach(self) -> AudioArray:
        """This array: there is no autograd graph to detach from."""
        return self

    def cpu(self) -> AudioArray:
        """This array: it is in CPU memory already."""
        return self

    def clamp(self, min: float | None = None, max: float | None = None) -> AudioArray:
        """Values limited to ``[min, max]`` (either may be None), in a new array, as
        ``Tensor.clamp``: NaN stays NaN, and ``min > max`` gives ``max`` everywhere."""
        if min is None and max is None:
            raise TypeError("clamp() needs min or max (at least one of them not None)")
        return np.clip(self, min, max).view(AudioArray)

    def to(self, target: Any) -> AudioArray:
        """``Tensor.to`` for what applies here: ``"cpu"`` (this array), or a dtype, numpy's or
        torch's (e.g. ``torch.int16``; floats convert as in torch, truncating toward zero)."""
        if str(target) == "cpu":  # also torch.device("cpu")
            return self
        return self.astype(_numpy_dtype(target)).view(AudioArray)


def _numpy_dtype(dtype: Any) -> np.dtype:
    if type(dtype).__name__ == "dtype" and type(dtype).__module__ == "torch":
        dtype = str(dtype).removeprefix("torch.")  # torch.int16 -> "int16"
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(
            f"cannot convert audio to {dtype!r}: give a numpy dtype or a torch dtype "
            "numpy has (e.g. torch.int16, torch.float32)"
        ) from exc


class TTSModel:
    """A loaded Pocket TTS model. Read-only once loaded, and safe to generate from many threads
    at once: every call owns its state (KV caches, decoder state, buffers).

    Noise: the model has one generator, like torch's global generator in the reference, and a
    call draws from it when no other call holds it (so sequential use from one thread gives
    the reference's noise sequence). A call that starts while another holds it gets its own
    generator: seeded with ``seed`` when given (so a seeded call's audio is bit-identical
    whatever runs beside it), else from fresh entropy."""

    _TOKENS_PER_SECOND_ESTIMATE = 3.0
    _GEN_SECONDS_PADDING = 2.0
    _MIN_FRAMES_BEFORE_EOS = 6

    def __init__(
        self,
        config: Config,
        weights: dict[str, np.ndarray],
        *,
        temp: float,
        sampler_decode_steps: int,
        noise_clamp: float | None,
        eos_threshold: float,
        origin: Path | None = None,
        has_voice_cloning: bool = True,
        has_custom_weights: bool = False,
        seed: int | None = None,
        dtype: str = "float32",
    ) -> None:
        """Build from a parsed config and its float32 weights (use :meth:`load_model`)."""
        self.config = config
        self.origin = origin
        self.temp = temp
        self.sampler_decode_steps = sampler_decode_steps
        self.noise_clamp = noise_clamp
        self.eos_threshold = eos_threshold
        self.has_voice_cloning = has_voice_cloning
        self.has_custom_weights = has_custom_weights
        # 0 = yield every decoded frame at once; n = at most n frames per yielded chunk.
        self.max_decoder_frames_per_call = 0
        # The text flags, as in the reference: plain attributes read by every generation.
        self.pad_with_spaces_for_short_inputs = config.pad_with_spaces_for_short_inputs
        self.remove_semicolons = config.remove_semicolons
        self.append_terminal_punctuation = config.append_terminal_punctuation
        self.capitalize_first_letter = config.capitalize_first_letter
        self.replace_characters = dict(config.replace_characters or {})
        self.model_recommended_frames_after_eos = config.model_recommended_frames_after_eos
        self._last_chunk_stats: ChunkStats | None = None
        lt = config.flow_lm.lookup_table
        tokenizer_path = config.resolve_local(lt.tokenizer_path)
        if tokenizer_path is None:
            raise ValueError("the config has no flow_lm.lookup_table.tokenizer_path")
        self.tokenizer = build_tokenizer(lt.n_bins, hub.resolve_path(tokenizer_path), lt.tokenizer)
        self.dtype = dtype
        self.flow_lm = FlowLM(config, weights, dtype=dtype)
        # The kernels keep packed copies: drop each original as soon as it has been consumed,
        # so loading never holds two copies of a whole stage (peak RSS).
        for key in [k for k in weights if k.startswith("flow_lm.flow_net.")]:
            del weights[key]
        mimi_weights = _Consuming(
            {k: weights.pop(k) for k in [k for k in weights if k.startswith("mimi.")]}
        )
        self.mimi = Mimi(config, mimi_weights, dtype)
        self._noise = _native.NoiseSource(
            _torch_seed(seed) if seed is not None else _entropy_seed()
        )
        # Held by the call drawing from self._noise (at most one at a time).
        self._noise_lock = threading.Lock()
        self._stages = Stages(self.flow_lm, self.mimi)
        #: Runs every generation of this model; ``engine.configure(max_streams=...,
        #: max_waiting=...)`` sets its capacity, ``engine.load()`` reports its load.
        self.engine = Engine(self._stages)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load_model(
        cls,
        language: str | None = None,
        config: str | Path | None = None,
        temp: float | None = None,
        sampler_decode_steps: int = DEFAULT_SAMPLER_DECODE_STEPS,
        noise_clamp: float | None = None,
        eos_threshold: float | None = None,
        quantize: bool = False,
        checkpoint: str | Path | None = None,
        lsd_decode_steps: int | None = None,
        *,
        weights: str | Path | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> TTSModel:
        """Load a model from a packaged language or a config YAML (local, https:// or hf://).

        Same signature as the reference; extras: ``weights`` (a local safetensors file that
        overrides the config's ``weights_path``), ``dtype`` of the stored weights and ``seed``
        of the noise generator. ``quantize=True`` is accepted as ``dtype="int8"``.
        ``checkpoint`` (torch training checkpoints) is not supported without torch.
        """
        if config is not None and language is not None:
            raise ValueError(
                "Cannot specify both config and language, please choose one or the other."
            )
        if checkpoint is not None:
            raise ValueError(_TRAINING_CHECKPOINTS_NEED_TORCH)
        if lsd_decode_steps is not None:
            logger.warning("lsd_decode_steps is deprecated, use sampler_decode_steps")
            sampler_decode_steps = lsd_decode_steps
        if not isinstance(sampler_decode_steps, int) or sampler_decode_steps < 1:
            raise ValueError(
                f"sampler_decode_steps must be an int >= 1, got {sampler_decode_steps!r}"
            )
        if seed is not None:
            _torch_seed(seed)  # a bad seed fails before the load, not after
        Sampling.check(
            temp=temp, noise_clamp=noise_clamp, eos_threshold=eos_threshold, decode_steps=1
        )
        if quantize:
            dtype = "int8"
        if dtype not in _WEIGHT_DTYPES:
            raise ValueError(f"dtype must be one of {_WEIGHT_DTYPES}, got {dtype!r}")
        if config is None and language is None:
            language = DEFAULT_LANGUAGE
        if language is not None:
            config = CONFIGS_DIR / f"{language}.yaml"
            if not Path(config).exists():
                raise ValueError(
                    f"Unknown language {language!r}; available: "
                    f"{sorted(p.stem for p in CONFIGS_DIR.glob('*.yaml'))}"
                )
        config_path = str(config)
        if Path(hub.location_path(config_path)).suffix not in (".yaml", ".yml"):
            raise ValueError("Config should be a path to a YAML file ending with .yaml")
        model_config = load_config(config_path, download=hub.resolve_path)
        weights_file: Path | None
        if weights is not None:
            weights_file, has_cloning, custom = Path(weights), True, True
            if not weights_file.exists():
                raise FileNotFoundError(f"weights file not found: {weights_file}")
        else:
            weights_file, has_cloning = hub.resolve_weights(model_config)
            custom = False
            if weights_file is None:
                raise ValueError(
                    f"config {config_path} has no weights_path; pass weights=<file.safetensors>"
                )
        t0 = time.perf_counter()
        arrays = load_weights(model_config, weights_file, dtype=dtype, cache=True)
        model = cls(
            model_config,
            arrays,
            temp=model_config.default_temperature if temp is None else float(temp),
            sampler_decode_steps=sampler_decode_steps,
            noise_clamp=noise_clamp,
            eos_threshold=(
                model_config.default_eos_threshold if eos_threshold is None else eos_threshold
            ),
            origin=Path(config_path),
            has_voice_cloning=has_cloning,
            has_custom_weights=custom,
            seed=seed,
            dtype=dtype,
        )
        logger.info("Loaded %s in %.0f ms", config_path, (time.perf_counter() - t0) * 1000)
        return model

    def load_training_checkpoint(self, path: str | Path, use_ema: bool = True) -> None:
        """Not supported: the reference loads torch training checkpoints (``.pt``) here, which
        needs torch. Raises ``ValueError`` saying how to export the weights instead."""
        raise ValueError(_TRAINING_CHECKPOINTS_NEED_TORCH)

    @property
    def sample_rate(self) -> int:
        """Output sample rate (24 000 Hz)."""
        return self.config.mimi.sample_rate

    @property
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    @property
    def last_chunk_stats(self) -> dict:
        """Diagnostics of the last text chunk generated (empty before the first): its
        ``max_gen_len``, ``eos_step``, ``frames`` emitted and ``eos_logits`` (the raw EOS logit
        of every flow-LM step), updated while it runs."""
        return {} if self._last_chunk_stats is None else self._last_chunk_stats.as_dict()

    def seed(self, seed: int) -> None:
        """Re-seed the model's noise generator (MT19937 like ``torch.manual_seed``); waits
        while a generation is drawing from it."""
        value = _torch_seed(seed)
        with self._noise_lock:
            self._noise.seed(value)

    @contextmanager
    def _noise_source(self, seed: int | None) -> Iterator[_native.NoiseSource]:
        """The generator one call draws from: the model's (re-seeded with ``seed`` if given)
        when free, else the call's own (see the class docstring)."""
        value = None if seed is None else _torch_seed(seed)
        if self._noise_lock.acquire(blocking=False):
            try:
                if value is not None:
                    self._noise.seed(value)
                yield self._noise
            finally:
                self._noise_lock.release()
        else:
            yield _native.NoiseSource(value if value is not None else _entropy_seed())

    def _sampling(self) -> Sampling:
        """The sampling attributes as they are now (the reference reads them per generation);
        a bad one (``model.temp = float("nan")``) raises ValueError naming it."""
        try:
            return Sampling(
                temp=self.temp,
                noise_clamp=self.noise_clamp,
                eos_threshold=self.eos_threshold,
                decode_steps=self.sampler_decode_steps,
                min_frames_before_eos=self._MIN_FRAMES_BEFORE_EOS,
            )
        except ValueError as exc:
            raise ValueError(f"model attribute: {exc}") from None

    def _text_options(self) -> TextOptions:
        """The text attributes as they are now (the reference reads them per generation)."""
        return TextOptions.from_config(self)

    # ------------------------------------------------------------------ voices

    def get_state_for_audio_prompt(
        self,
        audio_conditioning: str | Path | np.ndarray | VoiceState,
        truncate: bool = False,
        *,
        stop: threading.Event | None = None,
    ) -> VoiceState:
        """Voice state for a prompt: a ``.safetensors`` voice file (local, https://, hf://),
        a predefined voice name, an audio file (any rate, mono or stereo; resampled to 24 kHz)
        or a mono float array ``[T]`` / ``[1, T]`` already at 24 kHz. ``truncate`` keeps the
        first 30 s. Cloning a long prompt stops within ~0.05 s on Ctrl-C, or when ``stop`` is
        set (:class:`~pocket_tts.voice.VoiceEncodingCancelled`).
        """
        if isinstance(audio_conditioning, VoiceState):
            return audio_conditioning.copy()
        if audio_conditioning is None or isinstance(audio_conditioning, (bool, int, float, dict)):
            raise TypeError(
                "audio_conditioning must be a voice file or URL, a predefined voice name, an "
                f"audio file or a float array, got {type(audio_conditioning).__name__}"
                + (
                    " (to generate without a voice, pass model_state=None to generate_audio)"
                    if audio_conditioning is None
                    else ""
                )
            )
        if isinstance(audio_conditioning, (str, Path)):
            src = str(audio_conditioning)
            if _is_safetensors_source(src):
                return import_model_state(hub.resolve_path(src), self.flow_lm)
            if isinstance(audio_conditioning, str) and src in hub.PREDEFINED_VOICES:
                unavailable = self.predefined_voices_unavailable()
                if unavailable is not None:
                    raise ValueError(unavailable.format(voice=repr(src)))
                assert self.origin is not None  # checked by predefined_voices_unavailable
                return import_model_state(
                    hub.resolve_path(hub.predefined_voice_path(self.origin.stem, src)),
                    self.flow_lm,
                )
            if not self.has_voice_cloning:
                raise ValueError(hub.VOICE_CLONING_UNSUPPORTED)
            if hub.is_remote_path(src):
                audio_conditioning = hub.resolve_path(src)
        voice = voice_state_from_audio(
            self.flow_lm, self.mimi, audio_conditioning, truncate, stop=stop
        )
        # The reference's prompt prefill also runs the flow head once and draws noise for it;
        # skipped while a generation holds the generator (its sequence is its own).
        if self._noise_lock.acquire(blocking=False):
            try:
                self._stages.skip_noise(self._noise, voice.noise_draws, self._sampling())
            finally:
                self._noise_lock.release()
        return voice

    def predefined_voices_unavailable(self) -> str | None:
        """Why this model cannot use the predefined voices (None: it can). They are states
        precomputed with the released weights of a packaged language config. The reason has a
        ``{voice}`` field for the voice's name."""
        if self.has_custom_weights:
            return (
                "Predefined voice {voice} is a state precomputed with the released weights; "
                "pass the voice as an audio file instead."
            )
        if self.origin is None or self.origin.parent.resolve() != CONFIGS_DIR.resolve():
            return (
                "Cannot use predefined voices when the model is not loaded from a packaged "
                f"language config (origin: {self.origin})."
            )
        return None

    # ------------------------------------------------------------------ generation

    def _estimate_max_gen_len(self, token_count: int) -> int:
        seconds = token_count / self._TOKENS_PER_SECOND_ESTIMATE + self._GEN_SECONDS_PADDING
        return math.ceil(seconds * self.config.mimi.frame_rate)

    def generate_audio(
        self,
        model_state: VoiceState | None,
        text_to_generate: str,
        max_tokens: int = MAX_TOKEN_PER_CHUNK,
        frames_after_eos: int | None = None,
        copy_state: bool = True,
        *,
        seed: int | None = None,
    ) -> AudioArray:
        """The whole utterance as one float32 array ``[samples]`` at :attr:`sample_rate`:
        exactly the concatenation of :meth:`generate_audio_stream`'s chunks (an
        :class:`AudioArray`, so torch-style calls such as ``.numpy()`` work too)."""
        chunks = [
            np.array(c, copy=True)
            for c in self.generate_audio_stream(
                model_state,
                text_to_generate,
                max_tokens=max_tokens,
                frames_after_eos=frames_after_eos,
                copy_state=copy_state,
                seed=seed,
            )
        ]
        if not chunks:
            return np.zeros(0, np.float32).view(AudioArray)
        return np.concatenate(chunks).view(AudioArray)

    def generate_audio_stream(
        self,
        model_state: VoiceState | None,
        text_to_generate: str,
        max_tokens: int = MAX_TOKEN_PER_CHUNK,
        frames_after_eos: int | None = None,
        copy_state: bool = True,
        stop: threading.Event | None = None,
        *,
        seed: int | None = None,
        on_text_chunk: Callable[[int, int, str], None] | None = None,
    ) -> Iterator[AudioArray]:
        """Yield float32 audio chunks (:class:`AudioArray`, multiples of 1920 samples = 80 ms)
        as soon as they are decoded. Long text is split into chunks of at most ``max_tokens``
        tokens (:func:`~pocket_tts.text.prepare.chunk_text_for_generation`); each chunk
        restarts from the voice state (``copy_state=True``) or continues the caller's state
        (``copy_state=False``, mutating it). Set ``stop`` to cancel.
        Chunks are views into a buffer owned by the current text chunk: valid forever, and
        never overwritten. ``seed`` re-seeds the noise generator first; ``on_text_chunk(i, n,
        text)`` is called before text chunk ``i`` of ``n`` starts (progress reporting)."""
        if not isinstance(text_to_generate, str):
            raise TypeError(f"text must be a str, got {type(text_to_generate).__name__}")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        if frames_after_eos is not None and (
            not isinstance(frames_after_eos, int) or frames_after_eos < 0
        ):
            raise ValueError(f"frames_after_eos must be an int >= 0, got {frames_after_eos!r}")
        if model_state is not None and not isinstance(model_state, VoiceState):
            raise TypeError("model_state must come from get_state_for_audio_prompt (or be None)")
        if model_state is not None:
            model_state.validate(self.flow_lm)
        chunks = chunk_text_for_generation(
            self.tokenizer,
            text_to_generate,
            max_tokens,
            frames_after_eos,
            self.model_recommended_frames_after_eos,
            self._text_options(),
            split_oversized=True,
        )
        stop = stop if stop is not None else threading.Event()
        with self.engine.slot(stop) as admitted, self._noise_source(seed) as noise:
            for i, chunk in enumerate(chunks):
                if stop.is_set() or not admitted:
                    break
                if on_text_chunk is not None:
                    on_text_chunk(i, len(chunks), chunk.text)
                yield from self._generate_chunk(model_state, chunk, copy_state, stop, noise)

    async def agenerate_audio_stream(
        self,
        model_state: VoiceState | None,
        text_to_generate: str,
        max_tokens: int = MAX_TOKEN_PER_CHUNK,
        frames_after_eos: int | None = None,
        copy_state: bool = True,
        *,
        seed: int | None = None,
        on_text_chunk: Callable[[int, int, str], None] | None = None,
    ) -> AsyncIterator[AudioArray]:
        """:meth:`generate_audio_stream` as an async iterator, for servers: the event loop is
        never blocked (the call waits for its engine slot and its audio on a thread of its
        own), and cancelling the task, or leaving the ``async for``, stops the stream within
        a frame. At most a few chunks wait for a consumer that stops reading; then the
        stream pauses in the engine."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        ready: asyncio.Queue[Any] = asyncio.Queue()
        room = threading.Semaphore(_ASYNC_CHUNKS_AHEAD)

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(ready.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def produce() -> None:
            try:
                for audio in self.generate_audio_stream(
                    model_state,
                    text_to_generate,
                    max_tokens=max_tokens,
                    frames_after_eos=frames_after_eos,
                    copy_state=copy_state,
                    stop=stop,
                    seed=seed,
                    on_text_chunk=on_text_chunk,
                ):
                    while not room.acquire(timeout=0.05):
                        if stop.is_set():
                            return
                    post(audio)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's task
                post(_Failed(exc))
            finally:
                post(_END)

        thread = threading.Thread(target=produce, name="pocket-tts-async", daemon=True)
        thread.start()
        try:
            while True:
                item = await ready.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                room.release()
                yield item
        finally:
            stop.set()

    async def agenerate_audio(
        self,
        model_state: VoiceState | None,
        text_to_generate: str,
        max_tokens: int = MAX_TOKEN_PER_CHUNK,
        frames_after_eos: int | None = None,
        copy_state: bool = True,
        *,
        seed: int | None = None,
    ) -> AudioArray:
        """:meth:`generate_audio` for asyncio: awaits the whole utterance without blocking
        the event loop (see :meth:`agenerate_audio_stream`)."""
        chunks = [
            np.array(c, copy=True)
            async for c in self.agenerate_audio_stream(
                model_state,
                text_to_generate,
                max_tokens=max_tokens,
                frames_after_eos=frames_after_eos,
                copy_state=copy_state,
                seed=seed,
            )
        ]
        if not chunks:
            return np.zeros(0, np.float32).view(AudioArray)
        return np.concatenate(chunks).view(AudioArray)

    def _generate_chunk(
        self,
        voice: VoiceState | None,
        chunk: TextChunk,
        copy_state: bool,
        stop: threading.Event,
        noise: _native.NoiseSource,
    ) -> Iterator[AudioArray]:
        """One text chunk through the pipeline; with ``copy_state=False`` the voice then
        continues after it."""
        tokens = np.asarray(self.tokenizer.encode(chunk.text), dtype=np.int64)
        state = self._stages.new_chunk(
            voice,
            tokens,
            self._estimate_max_gen_len(len(tokens)),
            chunk.frames_after_eos,
            self._sampling(),
            noise,
        )
        self._last_chunk_stats = state.stats
        stream = self.engine.start(state, stop, self.max_decoder_frames_per_call)
        for audio in stream.audio():
            yield audio.view(AudioArray)
        if not copy_state and voice is not None:
            voice.continue_from(state.flow)


#: Chunks an async consumer may have waiting before its stream's thread stops taking more.
_ASYNC_CHUNKS_AHEAD = 4
_END = object()


@dataclass(frozen=True)
class _Failed:
    """An exception of the producing thread, to re-raise in the async consumer."""

    exc: BaseException


def _torch_seed(seed: object) -> int:
    """The 64-bit generator seed ``torch.manual_seed(seed)`` uses: an int in
    ``[-2**63, 2**64 - 1]``, a negative one taken modulo ``2**64`` (two's complement, as
    torch does). A float (``1.5``, which torch would truncate silently) is refused."""
    if isinstance(seed, (float, np.floating)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be an int, as torch.manual_seed takes, got {type(seed).__name__} {seed!r}"
        )
    value = int(seed)
    if not -(2**63) <= value <= 2**64 - 1:
        raise ValueError(
            f"seed {value} is outside [-2**63, 2**64 - 1], the range torch.manual_seed accepts"
        )
    return value % 2**64


def _entropy_seed() -> int:
    return int.from_bytes(os.urandom(8), "little")


class _Consuming(dict):
    """A dict whose lookups remove the entry: a consumer that re-lays-out each tensor drops the
    original as it goes."""

    def __getitem__(self, key: str) -> Any:
        return self.pop(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.pop(key, default)
