"""Voice states: the flow LM's KV-cache prefix after a voice prompt, and its file format.

A voice state holds only the flow-LM attention caches (keys stored after RoPE) and the offset
(positions written), exactly what the reference's ``get_state_for_audio_prompt`` returns. It is
built from audio by :func:`voice_state_from_audio` (Mimi encoder -> speaker projection
[-> BOS row] -> flow-LM prefill) and saved / loaded in the reference's safetensors layout by
:func:`export_model_state` / :func:`import_model_state`, so voice files move freely between
the reference and this package::

    transformer.layers.{i}.self_attn/cache   float32 [2, 1, N, H_kv, D]   K then V, K post-RoPE
    transformer.layers.{i}.self_attn/offset  int64 [1]                    positions written
    transformer.layers.{i}.self_attn/pad     int64 [1]                    0

A legacy ``current_end`` entry instead of ``offset`` means ``offset = current_end.shape[0]``
(as the reference reads it).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .checkpoint.safetensors import SafetensorsError, read_safetensors, write_safetensors

if TYPE_CHECKING:
    from .flow_lm import FlowLM, FlowLMState
    from .mimi import Mimi

__all__ = [
    "VoiceEncodingCancelled",
    "VoiceState",
    "VoiceStateError",
    "export_model_state",
    "import_model_state",
    "voice_state_from_audio",
]

_MODULE = re.compile(r"transformer\.layers\.(\d+)\.self_attn")
#: Prefill scratch rows of a voice state: its prompt goes in blocks (FlowLM.prefill).
PREFILL_ROWS = 64


class VoiceStateError(ValueError):
    """A voice-state file that is unreadable, malformed, or made for another model."""


class VoiceEncodingCancelled(RuntimeError):
    """Building a voice state from audio was stopped (its ``stop`` event was set)."""


def _encode_cancellable(mimi: Mimi, samples: np.ndarray, stop: threading.Event | None) -> Any:
    """``mimi.encode(samples)`` on a worker thread, this one waiting in short slices: Ctrl-C
    (KeyboardInterrupt here) or ``stop`` stops the encoder within one chunk of frames, and
    the interrupt is raised once it has."""
    cancel = np.zeros(1, np.int32)
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(mimi.encode(samples, cancel))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    worker = threading.Thread(target=run, name="pocket-tts-encode", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.02)
            if stop is not None and stop.is_set():
                cancel[0] = 1
    except BaseException:
        cancel[0] = 1
        worker.join()
        raise
    if errors:
        raise errors[0]
    return result[0]


@dataclass
class VoiceState:
    """Flow-LM KV-cache prefix of a voice prompt.

    Attributes:
        kv: float32 ``[num_layers, 2, N, H_kv, D]`` (K then V; keys after RoPE). Only the first
            ``offset`` positions are meaningful (``N == offset`` for states built here).
            Streams of this voice read it in place while they run: give a voice a new array
            rather than writing into this one.
        offset: positions written (``N_frames + 1`` with the BOS row, for an audio prompt).
        noise_draws: noise vectors the reference drew from its generator while building this
            state: 1 for a state computed from audio (its prompt prefill runs the flow head
            once and discards the sample), 0 for one loaded from a file. A caller emulating
            the reference's RNG advances its generator by this many draws.
    """

    kv: np.ndarray
    offset: int
    noise_draws: int = 0

    @property
    def num_layers(self) -> int:
        """Flow-LM layers covered."""
        return int(self.kv.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the KV prefix."""
        return int(self.kv[:, :, : self.offset].nbytes)

    def copy(self) -> VoiceState:
        """An independent copy (generation may extend a state in place)."""
        return VoiceState(self.kv.copy(), int(self.offset), int(self.noise_draws))

    def validate(self, flow_lm: FlowLM) -> None:
        """Raise :class:`VoiceStateError` unless this state fits ``flow_lm``."""
        _check_against_model(self.kv.shape, flow_lm, "voice state")
        if not 0 <= self.offset <= self.kv.shape[2]:
            raise VoiceStateError(
                f"voice state offset {self.offset} outside its cache length {self.kv.shape[2]}"
            )

    def to_flow_state(
        self, flow_lm: FlowLM, capacity: int, max_prefill: int = 512, share: bool = False
    ) -> FlowLMState:
        """A new flow-LM stream state of ``capacity`` positions starting from this prefix, with
        scratch for prefills of up to ``max_prefill`` rows (its size scales with that). With
        ``share`` the state reads the prefix from this voice's ``kv`` in place instead of
        copying it, so that every stream of one voice holds one copy (the engine's streams;
        ``kv`` is first made exactly ``offset`` positions long and contiguous, if it is not)."""
        self.validate(flow_lm)
        if capacity < self.offset:
            raise ValueError(f"capacity {capacity} < voice prefix {self.offset}")
        if not share:
            return flow_lm.new_state(capacity, max_prefill, prefix=self.kv[:, :, : self.offset])
        kv = self.kv
        if kv.shape[2] != self.offset or kv.dtype != np.float32 or not kv.flags.c_contiguous:
            kv = self.kv = np.ascontiguousarray(kv[:, :, : self.offset], dtype=np.float32)
        return flow_lm.new_state(capacity, max_prefill, prefix=kv, share_prefix=True)

    def continue_from(self, state: FlowLMState) -> None:
        """Become the prefix a finished generation left in ``state`` (``copy_state=False``: the
        next generation continues after it). The used KV positions are copied out of ``state``;
        no noise is owed for them (``noise_draws = 0``)."""
        self.kv = np.ascontiguousarray(state.kv[:, :, : state.offset])
        self.offset = int(state.offset)
        self.noise_draws = 0


def voice_state_from_audio(
    flow_lm: FlowLM,
    mimi: Mimi,
    audio: str | os.PathLike[str] | np.ndarray,
    truncate: bool = False,
    stop: threading.Event | None = None,
) -> VoiceState:
    """Voice state of an audio prompt, as the reference's ``get_state_for_audio_prompt``.

    ``audio`` is a file path (any rate; resampled to 24 kHz) or a float array ``[T]`` already
    at 24 kHz; it goes through :func:`pocket_tts.audio.prompt.load_prompt_audio` (``end_on_pause``
    included; ``truncate`` keeps the first 30 s of a file). Then: Mimi encoder -> raw latents
    ``[N, inner]`` -> speaker projection (+ BOS row) -> prefill of a flow-LM state of exactly
    ``N + 1`` positions. The returned state has ``noise_draws == 1``: the reference consumes one
    noise vector here, which the caller must skip to stay in step with it.

    A long prompt can be interrupted: Ctrl-C, or setting ``stop`` (from another thread), ends
    the encoding or the prefill within about 0.05 s (:class:`VoiceEncodingCancelled` for
    ``stop``).
    """
    from .audio.prompt import load_prompt_audio

    samples = load_prompt_audio(audio, truncate)
    latents = _encode_cancellable(mimi, samples, stop)
    if latents is None:
        raise VoiceEncodingCancelled("voice encoding cancelled (stop was set)")
    cond = flow_lm.voice_conditioning(latents)
    state = flow_lm.new_state(cond.shape[0], max_prefill=min(cond.shape[0], PREFILL_ROWS))
    if not flow_lm.prefill(state, cond, stop=stop):
        raise VoiceEncodingCancelled("voice encoding cancelled (stop was set)")
    n = int(state.offset)
    return VoiceState(np.ascontiguousarray(state.kv[:, :, :n]), n, noise_draws=1)


def export_model_state(state: VoiceState, path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` in the reference's voice-state safetensors layout."""
    if not isinstance(state, VoiceState):
        raise TypeError(f"expected a VoiceState, got {type(state).__name__}")
    kv = np.asarray(state.kv)
    if kv.ndim != 5 or kv.shape[1] != 2:
        raise VoiceStateError(f"voice state kv must be [L, 2, N, H_kv, D], got {kv.shape}")
    n = int(state.offset)
    if not 0 <= n <= kv.shape[2]:
        raise VoiceStateError(f"offset {n} outside the cache length {kv.shape[2]}")
    tensors: dict[str, np.ndarray] = {}
    for i in range(kv.shape[0]):
        name = f"transformer.layers.{i}.self_attn"
        tensors[f"{name}/offset"] = np.array([n], np.int64)
        tensors[f"{name}/pad"] = np.array([0], np.int64)
        tensors[f"{name}/cache"] = np.ascontiguousarray(kv[i, :, None, :n], dtype=np.float32)
    write_safetensors(path, tensors)


def _check_against_model(shape: tuple[int, ...], flow_lm: FlowLM, where: str) -> None:
    want = (flow_lm.num_layers, flow_lm.num_kv_heads, flow_lm.head_dim)
    got = (shape[0], shape[3], shape[4])
    if got != want:
        raise VoiceStateError(
            f"{where} does not fit this model: it has {got[0]} layers of {got[1]} KV heads x "
            f"{got[2]} dims, the model has {want[0]} layers of {want[1]} x {want[2]} "
            "(a voice exported with another model config?)"
        )


def _scalar_int(arr: np.ndarray, what: str) -> int:
    a = np.asarray(arr)
    if a.dtype.kind not in "iu" or a.size != 1:
        raise VoiceStateError(f"{what} must be one integer, got {a.dtype} {list(a.shape)}")
    return int(a.reshape(-1)[0])


def import_model_state(path: str | os.PathLike[str], flow_lm: FlowLM | None = None) -> VoiceState:
    """Load a voice state written by :func:`export_model_state` or by the reference.

    With ``flow_lm``, the state is also checked against the model (layer count, KV heads, head
    width). Raises :class:`VoiceStateError` (a ``ValueError``) with the reason for a corrupt
    file, unknown entries, missing layers, inconsistent shapes or offsets, an offset beyond the
    cache, NaN/inf in the used prefix, or a model mismatch; ``FileNotFoundError`` if missing.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"voice state file not found: {p}")
    try:
        tensors = read_safetensors(p)
    except SafetensorsError as exc:
        raise VoiceStateError(f"{p} is not a valid voice-state file: {exc}") from exc

    modules: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        mod, sep, field = key.partition("/")
        m = _MODULE.fullmatch(mod)
        if not sep or m is None or "/" in field:
            raise VoiceStateError(
                f"{p}: unexpected entry {key!r} (a voice state holds only "
                "'transformer.layers.<i>.self_attn/{cache,offset,pad}')"
            )
        modules.setdefault(int(m.group(1)), {})[field] = value
    if not modules:
        raise VoiceStateError(f"{p}: no voice-state entries")
    n_layers = max(modules) + 1
    missing = [i for i in range(n_layers) if i not in modules]
    if missing:
        raise VoiceStateError(f"{p}: missing layers {missing}")

    caches, offsets = [], []
    for i in range(n_layers):
        entry = modules[i]
        where = f"{p}: layer {i}"
        unknown = set(entry) - {"cache", "offset", "pad", "current_end"}
        if unknown:
            raise VoiceStateError(f"{where}: unexpected fields {sorted(unknown)}")
        if "cache" not in entry:
            raise VoiceStateError(f"{where}: no 'cache'")
        cache = np.asarray(entry["cache"])
        if cache.dtype.kind != "f":
            raise VoiceStateError(f"{where}: cache dtype {cache.dtype} is not floating point")
        if cache.ndim != 5 or cache.shape[0] != 2 or cache.shape[1] != 1:
            raise VoiceStateError(
                f"{where}: cache shape {list(cache.shape)} is not [2, 1, N, H_kv, D]"
            )
        if "offset" in entry:
            off = _scalar_int(entry["offset"], f"{where} offset")
        elif "current_end" in entry:
            off = int(np.asarray(entry["current_end"]).shape[0])  # legacy layout
        else:
            raise VoiceStateError(f"{where}: neither 'offset' nor legacy 'current_end'")
        if "pad" in entry and _scalar_int(entry["pad"], f"{where} pad") != 0:
            raise VoiceStateError(f"{where}: padded (batched) voice states are not supported")
        if not 0 <= off <= cache.shape[2]:
            raise VoiceStateError(
                f"{where}: offset {off} outside the cache length {cache.shape[2]}"
            )
        caches.append(cache)
        offsets.append(off)
    shapes = {c.shape for c in caches}
    if len(shapes) != 1 or len(set(offsets)) != 1:
        raise VoiceStateError(f"{p}: layers disagree on cache shape or offset")
    off = offsets[0]
    kv = np.empty((n_layers, 2, off, *caches[0].shape[3:]), np.float32)
    for i, c in enumerate(caches):
        kv[i] = c[:, 0, :off]
    if not np.isfinite(kv).all():
        raise VoiceStateError(f"{p}: the cache prefix holds NaN or infinite values")
    if flow_lm is not None:
        _check_against_model(kv.shape, flow_lm, str(p))
    return VoiceState(kv, off, noise_draws=0)
