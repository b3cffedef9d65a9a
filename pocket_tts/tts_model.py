"""The user-facing model: text in, 24 kHz audio out, streamed in 80 ms frames.

Pipeline: text -> tokens (:mod:`.text`, :mod:`.tokenizer`) -> flow LM (:mod:`.flow_lm`) ->
normalised latents -> Mimi decoder (:mod:`.mimi`) -> audio. Per text chunk, the flow LM runs in
a worker thread and the Mimi decoder in the consuming thread; both spend their time inside C
kernels that release the GIL, so they occupy the two cores.

Semantics follow the reference ``pocket_tts.TTSModel`` 4.0.1 (see docs of each method).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import hub
from ._native import _flow_lm, _mimi
from .audio import _is_safetensors_source
from .checkpoint.loader import load_weights
from .checkpoint.storage import STORAGE_DTYPES
from .config import CONFIGS_DIR, Config, load_config
from .flow_lm import FlowLM, FlowLMState, cores_available
from .mimi import Mimi
from .text.prepare import (
    TextChunk,
    TextOptions,
    chunk_text_for_generation,
    effective_frames_after_eos,
    prepare_chunk,
)
from .text.tokenizer import build_tokenizer
from .voice import VoiceState, export_model_state, import_model_state, voice_state_from_audio

logger = logging.getLogger("pocket_tts")

DEFAULT_LANGUAGE = "english"
DEFAULT_SAMPLER_DECODE_STEPS = 1
MAX_TOKEN_PER_CHUNK = 50
_WEIGHT_DTYPES = tuple(STORAGE_DTYPES)

__all__ = ["TTSModel", "export_model_state"]


class TTSModel:
    """A loaded Pocket TTS model. Read-only once loaded; not thread-safe for concurrent
    generation (use one instance per concurrent stream, as with the reference)."""

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
        # 0 = decode every queued frame in one call; n = at most n frames per call.
        self.max_decoder_frames_per_call = 0
        #: Diagnostics of the last text chunk generated: max_gen_len, eos_step, frames emitted
        #: and the raw EOS logit of every flow-LM step.
        self.last_chunk_stats: dict = {}
        self.text_options = TextOptions.from_config(config)
        self.pad_with_spaces_for_short_inputs = config.pad_with_spaces_for_short_inputs
        self.remove_semicolons = config.remove_semicolons
        self.append_terminal_punctuation = config.append_terminal_punctuation
        self.capitalize_first_letter = config.capitalize_first_letter
        self.replace_characters = dict(config.replace_characters or {})
        self.model_recommended_frames_after_eos = config.model_recommended_frames_after_eos
        lt = config.flow_lm.lookup_table
        self.tokenizer = build_tokenizer(
            lt.n_bins, hub.resolve_path(config.resolve_local(lt.tokenizer_path)), lt.tokenizer
        )
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
        self._noise = _flow_lm.NoiseSource(
            seed if seed is not None else int.from_bytes(np.random.bytes(8), "little")
        )
        self._emb_std = np.ascontiguousarray(weights["flow_lm.emb_std"], dtype=np.float32)
        self._emb_mean = np.ascontiguousarray(weights["flow_lm.emb_mean"], dtype=np.float32)
        self._fade_in = _torch_linspace_0_1(self.sample_rate // 200)

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
            raise ValueError(
                "Training checkpoints (.pt) need torch; export them to safetensors with the "
                "reference (POCKET_TTS_SAVE_WEIGHTS=1) and pass weights=... instead."
            )
        if lsd_decode_steps is not None:
            logger.warning("lsd_decode_steps is deprecated, use sampler_decode_steps")
            sampler_decode_steps = lsd_decode_steps
        if not isinstance(sampler_decode_steps, int) or sampler_decode_steps < 1:
            raise ValueError(
                f"sampler_decode_steps must be an int >= 1, got {sampler_decode_steps!r}"
            )
        if temp is not None and not (math.isfinite(temp) and temp >= 0):
            raise ValueError(f"temp must be a finite number >= 0, got {temp!r}")
        if noise_clamp is not None and not (noise_clamp > 0):
            raise ValueError(f"noise_clamp must be positive, got {noise_clamp!r}")
        if eos_threshold is not None and math.isnan(eos_threshold):
            raise ValueError("eos_threshold must not be NaN")
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

    @property
    def sample_rate(self) -> int:
        """Output sample rate (24 000 Hz)."""
        return self.config.mimi.sample_rate

    @property
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    def seed(self, seed: int) -> None:
        """Re-seed the noise generator (MT19937 like ``torch.manual_seed``)."""
        self._noise.seed(int(seed))

    # ------------------------------------------------------------------ voices

    def get_state_for_audio_prompt(
        self, audio_conditioning: str | Path | np.ndarray | VoiceState, truncate: bool = False
    ) -> VoiceState:
        """Voice state for a prompt: a ``.safetensors`` voice file (local, https://, hf://),
        a predefined voice name, an audio file (any rate, mono or stereo; resampled to 24 kHz)
        or a mono float array ``[T]`` / ``[1, T]`` already at 24 kHz. ``truncate`` keeps the
        first 30 s.
        """
        if isinstance(audio_conditioning, VoiceState):
            return audio_conditioning.copy()
        if isinstance(audio_conditioning, (str, Path)):
            src = str(audio_conditioning)
            if _is_safetensors_source(src):
                return import_model_state(hub.resolve_path(src), self.flow_lm)
            if isinstance(audio_conditioning, str) and src in hub.PREDEFINED_VOICES:
                if self.has_custom_weights:
                    raise ValueError(
                        f"Predefined voice {src!r} is a state precomputed with the released "
                        "weights; pass the voice as an audio file instead."
                    )
                if self.origin is None or self.origin.parent.resolve() != CONFIGS_DIR.resolve():
                    raise ValueError(
                        "Cannot use predefined voices when the model is not loaded from a "
                        f"packaged language config (origin: {self.origin})."
                    )
                return import_model_state(
                    hub.resolve_path(hub.predefined_voice_path(self.origin.stem, src)),
                    self.flow_lm,
                )
            if not self.has_voice_cloning:
                raise ValueError(hub.VOICE_CLONING_UNSUPPORTED)
            if hub.is_remote_path(src):
                audio_conditioning = hub.resolve_path(src)
        voice = voice_state_from_audio(self.flow_lm, self.mimi, audio_conditioning, truncate)
        # The reference's prompt prefill also runs the flow head once and draws noise for it.
        self._skip_noise(voice.noise_draws)
        return voice

    def _skip_noise(self, n: int) -> None:
        buf = np.empty(self.flow_lm.ldim, np.float32)
        for _ in range(n):
            self._draw_noise(buf)

    def _draw_noise(self, out: np.ndarray) -> None:
        std = float(np.float32(self.temp**0.5))
        self._noise.normal(out, std, self.noise_clamp)

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
    ) -> np.ndarray:
        """The whole utterance as one float32 array ``[samples]`` at :attr:`sample_rate`:
        exactly the concatenation of :meth:`generate_audio_stream`'s chunks."""
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
            return np.zeros(0, np.float32)
        return np.concatenate(chunks)

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
    ) -> Iterator[np.ndarray]:
        """Yield float32 audio chunks (multiples of 1920 samples = 80 ms) as soon as they are
        decoded. Long text is split into chunks of at most ``max_tokens`` tokens at sentence
        boundaries; each chunk restarts from the voice state (``copy_state=True``) or continues
        the caller's state (``copy_state=False``, mutating it). Set ``stop`` to cancel.
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
        chunks = self._bounded_chunks(
            chunk_text_for_generation(
                self.tokenizer,
                text_to_generate,
                max_tokens,
                frames_after_eos,
                self.model_recommended_frames_after_eos,
                self.text_options,
            ),
            max_tokens,
            frames_after_eos,
        )
        if seed is not None:
            self.seed(seed)
        stop = stop if stop is not None else threading.Event()
        for i, chunk in enumerate(chunks):
            if stop.is_set():
                break
            if on_text_chunk is not None:
                on_text_chunk(i, len(chunks), chunk.text)
            yield from self._generate_chunk(
                model_state, chunk.text, chunk.frames_after_eos, copy_state, stop
            )

    def _bounded_chunks(
        self, chunks: list[TextChunk], max_tokens: int, frames_after_eos: int | None
    ) -> list[TextChunk]:
        """Split chunks that the reference's chunker leaves oversized (a run of text with no
        sentence or comma boundary) at word boundaries into pieces of at most ``max_tokens``
        tokens. Deliberate deviation: the reference generates such a chunk whole (warning that
        words may be skipped), with KV caches and a generation budget growing with its length;
        here per-chunk memory stays bounded whatever the text."""
        out: list[TextChunk] = []
        for chunk in chunks:
            if len(self.tokenizer.encode(chunk.text)) <= max_tokens:
                out.append(chunk)
                continue
            piece: list[str] = []
            for word in chunk.text.split():
                candidate = self._prepared(" ".join([*piece, word]), frames_after_eos).text
                if piece and len(self.tokenizer.encode(candidate)) > max_tokens:
                    out.append(self._prepared(" ".join(piece), frames_after_eos))
                    piece = [word]
                else:
                    piece.append(word)
            if piece:
                out.append(self._prepared(" ".join(piece), frames_after_eos))
        return out

    def _prepared(self, text: str, frames_after_eos: int | None) -> TextChunk:
        prepared, guess = prepare_chunk(text, **self.text_options.as_kwargs())
        frames = effective_frames_after_eos(
            frames_after_eos, guess, self.model_recommended_frames_after_eos
        )
        return TextChunk(prepared, frames)

    def _generate_chunk(
        self,
        voice: VoiceState | None,
        text: str,
        frames_after_eos: int,
        copy_state: bool,
        stop: threading.Event,
    ) -> Iterator[np.ndarray]:
        lm = self.flow_lm
        tokens = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
        max_gen_len = self._estimate_max_gen_len(len(tokens))
        prefix = 0 if voice is None else voice.offset
        # Everything this chunk needs, allocated once: KV caches, latents, decoder state, audio.
        capacity = prefix + len(tokens) + max_gen_len
        # Scratch for the text prefill only (sized for 512 rows it would be ~20 MB).
        max_prefill = max(len(tokens), 1)
        if voice is not None:
            state = voice.to_flow_state(lm, capacity, max_prefill)
        else:
            state = lm.new_state(capacity, max_prefill=max_prefill)
        latents = np.empty((max_gen_len, lm.ldim), np.float32)
        mimi_in = np.empty((max_gen_len, lm.ldim), np.float32)
        audio = np.empty(max_gen_len * self.mimi.frame_size, np.float32)
        decoder = self.mimi.new_decoder_state()
        frames: queue.Queue[int | BaseException | None] = queue.Queue()
        # Frames the flow LM has finished, for help_until. While the decoder thread waits for
        # a latent it computes chunks of the LM's products (one core would otherwise idle;
        # the LM step is bandwidth-bound and two cores stream faster than one).
        progress = np.zeros(1, np.int32)
        share = cores_available() >= 2
        abandon = threading.Event()
        # The first frame is decoded on both cores while the flow LM waits (time to first
        # audio): with two cores the flow-LM thread computes chunks of the decoder's products
        # until first_decoded is set, else it sleeps until then (it is set on every way out,
        # see finally). Afterwards the two stages run side by side, one core each, the
        # decoder's core joining the flow LM's products whenever it waits (see progress above).
        first_decoded = _FirstFrame()

        text_embeddings = lm.embed_tokens(state, tokens)
        self._skip_noise(1)  # the reference's text prefill draws one noise vector too

        def run_lm() -> None:
            try:
                self._autoregress(
                    state,
                    text_embeddings,
                    latents,
                    max_gen_len,
                    frames_after_eos,
                    stop,
                    abandon,
                    frames,
                    first_decoded,
                    progress if share else None,
                )
            except BaseException as exc:  # forwarded to the consumer
                frames.put(exc)
            finally:
                frames.put(None)
                _flow_lm.progress_store(progress, _LM_FINISHED)

        worker = threading.Thread(target=run_lm, name="pocket-tts-flow-lm", daemon=True)
        worker.start()
        done = 0
        received = 0
        fade = self._fade_in
        try:
            finished = False
            while not finished:
                if share and frames.empty():
                    _flow_lm.help_until(progress, received + 1)
                item = frames.get()
                n_new = 0
                while True:
                    if item is None:
                        finished = True
                        break
                    if isinstance(item, BaseException):
                        raise item
                    n_new += 1
                    received += 1
                    cap = self.max_decoder_frames_per_call
                    if cap > 0 and n_new >= cap:
                        break
                    try:
                        item = frames.get_nowait()
                    except queue.Empty:
                        break
                if n_new == 0:
                    continue
                a, b = done, done + n_new
                np.multiply(latents[a:b], self._emb_std, out=mimi_in[a:b])
                np.add(mimi_in[a:b], self._emb_mean, out=mimi_in[a:b])
                out = audio[a * self.mimi.frame_size : b * self.mimi.frame_size]
                threads = (_mimi.SHARED if share else 2) if a == 0 else 1
                self.mimi.decode(decoder, mimi_in[a:b], out, threads=threads)
                if a == 0:
                    first_decoded.set()
                    n = min(len(fade), len(out))
                    out[:n] *= fade[:n]
                done = b
                yield out
        finally:
            abandon.set()
            first_decoded.set()  # never leave the flow LM waiting
            worker.join()
        if not copy_state and voice is not None:
            voice.kv = np.ascontiguousarray(state.kv[:, :, : state.offset])
            voice.offset = state.offset
            voice.noise_draws = 0

    def _autoregress(
        self,
        state: FlowLMState,
        text_embeddings: np.ndarray,
        latents: np.ndarray,
        max_gen_len: int,
        frames_after_eos: int,
        stop: threading.Event,
        abandon: threading.Event,
        frames: queue.Queue,
        first_decoded: _FirstFrame,
        progress: np.ndarray | None = None,
    ) -> None:
        """The flow-LM loop (worker thread): frame ``step``'s latent goes to ``latents[step]``,
        then ``step`` to ``frames``. With ``progress`` the products are offered to the consumer
        thread (``help_until``) and ``progress[0]`` counts the frames done. After frame 0 it
        waits for the first frame's audio, helping with the decoder's products (two cores)
        or sleeping."""
        lm = self.flow_lm
        x = np.full(lm.ldim, np.nan, np.float32)
        noise = np.empty(lm.ldim, np.float32)
        cond = np.empty(lm.cond_dim, np.float32)
        eos_step = None
        stats = self.last_chunk_stats = {
            "max_gen_len": max_gen_len,
            "eos_step": None,
            "frames": 0,
            "eos_logits": np.full(max_gen_len, np.nan, np.float32),
        }
        for step in range(max_gen_len):
            if stop.is_set() or abandon.is_set():
                return
            self._draw_noise(noise)
            # The text prefill rides along with the first frame (one pass over the weights,
            # on both cores: the decoder has nothing to do yet).
            first = step == 0
            threads = _flow_lm.SHARED if progress is not None else (2 if first else 1)
            eos = lm.step(
                state,
                x,
                noise,
                latents[step],
                cond,
                self.sampler_decode_steps,
                prefix=text_embeddings if first else None,
                threads=threads,
            )
            stats["eos_logits"][step] = eos
            if (
                eos > self.eos_threshold
                and eos_step is None
                and step >= self._MIN_FRAMES_BEFORE_EOS
            ):
                eos_step = stats["eos_step"] = step
            if eos_step is not None and step >= eos_step + frames_after_eos:
                return
            stats["frames"] = step + 1
            frames.put(step)
            if progress is not None:
                _flow_lm.progress_store(progress, step + 1)
            if step == 0:
                if progress is not None:
                    _mimi.help_until(first_decoded.progress, 1)
                while not first_decoded.event.wait(0.05):
                    if stop.is_set() or abandon.is_set():
                        return
            x = latents[step]
        logger.warning(
            "Maximum generation length reached without EOS, this very often indicates an error."
        )


class _FirstFrame:
    """'The first frame is decoded', for the flow-LM thread to wait on: either helping with
    the decoder's products (``_mimi.help_until(progress, 1)``) or sleeping on ``event``."""

    def __init__(self) -> None:
        self.progress = np.zeros(1, np.int32)
        self.event = threading.Event()

    def set(self) -> None:
        _flow_lm.progress_store(self.progress, 1)
        self.event.set()


#: progress value meaning "the flow LM has returned" (help_until stops waiting).
_LM_FINISHED = 1 << 30


def _torch_linspace_0_1(steps: int) -> np.ndarray:
    """``torch.linspace(0, 1, steps)`` in float32, bit for bit (the fade-in ramp): torch fills
    the first half as ``start + i*step`` and the second half as ``end - (steps-1-i)*step``."""
    step = np.float32(1.0 / (steps - 1))
    i = np.arange(steps)
    half = steps // 2
    out = np.where(
        i < half,
        np.float32(0) + step * i.astype(np.float32),
        np.float32(1) - step * (steps - 1 - i).astype(np.float32),
    )
    return out.astype(np.float32)


class _Consuming(dict):
    """A dict whose lookups remove the entry: a consumer that re-lays-out each tensor drops the
    original as it goes."""

    def __getitem__(self, key: str) -> Any:
        return self.pop(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.pop(key, default)
