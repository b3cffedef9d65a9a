"""The server's voices: predefined names, OpenAI's names mapped onto them, voices registered
by upload (kept in ``--voices-dir``, shared by replicas), URLs, and the default voice.

Registered voices are keyed by the SHA-256 of what was uploaded: the same file uploaded twice
(to any replica) is the same voice. On disk a voice is ``<id>.safetensors`` (its voice state,
in the reference's format) and ``<id>.json`` (``{"id", "name", "created"}``), each written to
a temporary name first and renamed, so another replica never reads half a file. Voice states
are cached in memory, least recently used first out.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..hub import PREDEFINED_VOICES, is_remote_path
from ..voice import VoiceState, export_model_state

__all__ = ["DEFAULT_VOICE_ID", "OPENAI_VOICES", "UnknownVoiceError", "VoiceLibrary"]

#: OpenAI's voice names and the predefined voice each one speaks with (``--voice-alias``
#: changes them).
OPENAI_VOICES = {
    "alloy": "alba",
    "ash": "marius",
    "ballad": "javert",
    "coral": "cosette",
    "echo": "jean",
    "fable": "fantine",
    "onyx": "charles",
    "nova": "anna",
    "sage": "vera",
    "shimmer": "eponine",
    "verse": "paul",
    "marin": "mary",
    "cedar": "george",
}

#: The name of the server's default voice (``--default-voice``) in requests and listings.
DEFAULT_VOICE_ID = "default"
_ID = re.compile(r"^voice_[0-9a-f]{16}$")
_SAFETENSORS_SUFFIX = ".safetensors"


class UnknownVoiceError(KeyError):
    """No voice of that name or id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class VoiceLibrary:
    """Resolves a request's voice to a :class:`~pocket_tts.voice.VoiceState` of ``model``.

    ``voices_dir`` (None: registered voices live in memory only) holds registered voices;
    ``aliases`` maps extra names (OpenAI's by default) onto predefined names or ids;
    ``cache_size`` voice states stay in memory; ``truncate`` clones audio from its first 30 s
    (False: all of it). Thread-safe."""

    def __init__(
        self,
        model: Any,
        voices_dir: str | os.PathLike[str] | None = None,
        aliases: dict[str, str] | None = None,
        cache_size: int = 32,
        truncate: bool = True,
    ) -> None:
        self.model = model
        self.truncate = truncate  # clone audio prompts from their first 30 s only
        self.dir = Path(voices_dir) if voices_dir is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.aliases = dict(OPENAI_VOICES if aliases is None else aliases)
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, VoiceState] = collections.OrderedDict()
        self._memory_only: dict[str, dict[str, Any]] = {}  # registered without a voices_dir
        self._lock = threading.Lock()
        #: The server's default voice: what an alias speaks with when its predefined voice
        #: is unavailable (custom weights have no predefined voices).
        self.default_state: VoiceState | None = None

    # ------------------------------------------------------------------ lookup

    def predefined(self) -> list[str]:
        """The predefined voice names this model can use (none with custom weights)."""
        return [] if self.model.predefined_voices_unavailable() else list(PREDEFINED_VOICES)

    def registered(self) -> list[dict[str, Any]]:
        """The registered voices' records, oldest first."""
        records = [{k: v for k, v in r.items() if k != "state"} for r in self._memory_only.values()]
        if self.dir is not None:
            for meta in self.dir.glob("voice_*.json"):
                try:
                    record = json.loads(meta.read_text())
                except (OSError, ValueError):
                    continue  # being written by another replica, or damaged
                if (self.dir / f"{record.get('id')}{_SAFETENSORS_SUFFIX}").is_file():
                    records.append(record)
        return sorted(records, key=lambda r: (r.get("created", 0), r.get("id", "")))

    def resolve(self, voice: str) -> VoiceState:
        """The voice state for a predefined name, an alias (the default voice when its
        predefined voice is unavailable), a registered id, or a URL / hf:// path. Raises
        :class:`UnknownVoiceError`."""
        if voice == DEFAULT_VOICE_ID and self.default_state is not None:
            return self.default_state
        name = self.aliases.get(voice, voice)
        if (
            voice in self.aliases
            and name in PREDEFINED_VOICES
            and self.default_state is not None
            and name not in self.predefined()
        ):
            return self.default_state
        with self._lock:
            state = self._cache.get(name)
            if state is not None:
                self._cache.move_to_end(name)
                return state
        if _ID.match(name):
            state = self._load_registered(name)
        elif name in PREDEFINED_VOICES and name in self.predefined():
            state = self.model.get_state_for_audio_prompt(name)
        elif is_remote_path(name):
            state = self.model.get_state_for_audio_prompt(name, truncate=self.truncate)
        else:
            raise UnknownVoiceError(self._unknown_message(voice))
        self._remember(name, state)
        return state

    def _unknown_message(self, voice: str) -> str:
        known = self.predefined() + sorted(self.aliases)
        shown = ", ".join(known[:48]) or "none with these weights"
        return (
            f"unknown voice {voice!r}: use a voice name ({shown}), an id from "
            "GET /v1/audio/voices, or register one with POST /v1/audio/voices"
        )

    def _load_registered(self, voice_id: str) -> VoiceState:
        record = self._memory_only.get(voice_id)
        if record is not None:
            return record["state"]
        path = None if self.dir is None else self.dir / f"{voice_id}{_SAFETENSORS_SUFFIX}"
        if path is None or not path.is_file():
            raise UnknownVoiceError(f"unknown voice id {voice_id!r} (deleted, or never registered)")
        return self.model.get_state_for_audio_prompt(str(path))

    def _remember(self, key: str, state: VoiceState) -> None:
        with self._lock:
            self._cache[key] = state
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    # ------------------------------------------------------------------ registry

    def register(
        self, data: bytes, filename: str, name: str | None, stop: threading.Event | None = None
    ) -> dict[str, Any]:
        """Register the voice in an uploaded audio file (cloned from its first 30 s) or
        voice-state ``.safetensors``; returns its record. The same bytes give the same id."""
        voice_id = "voice_" + hashlib.sha256(data).hexdigest()[:16]
        record = {
            "id": voice_id,
            "name": name or Path(filename).stem or voice_id,
            "created": int(time.time()),
        }
        suffix = Path(filename).suffix.lower() or ".wav"
        if _looks_like_safetensors(data):
            suffix = _SAFETENSORS_SUFFIX
        with tempfile.TemporaryDirectory(prefix="pocket-tts-upload-") as tmp:
            upload = Path(tmp) / f"upload{suffix}"
            upload.write_bytes(data)
            state = self.model.get_state_for_audio_prompt(
                str(upload), truncate=self.truncate, stop=stop
            )
            if self.dir is None:
                self._memory_only[voice_id] = {**record, "state": state}
            else:
                _write_atomically(
                    self.dir / f"{voice_id}{_SAFETENSORS_SUFFIX}",
                    lambda p: export_model_state(state, p),
                )
                _write_atomically(
                    self.dir / f"{voice_id}.json", lambda p: Path(p).write_text(json.dumps(record))
                )
        self._remember(voice_id, state)
        return record

    def delete(self, voice_id: str) -> None:
        """Forget a registered voice (here and in ``voices_dir``)."""
        if not _ID.match(voice_id):
            raise UnknownVoiceError(f"{voice_id!r} is not a registered voice id")
        found = self._memory_only.pop(voice_id, None) is not None
        if self.dir is not None:
            for suffix in (".json", _SAFETENSORS_SUFFIX):
                try:
                    (self.dir / f"{voice_id}{suffix}").unlink()
                    found = True
                except FileNotFoundError:
                    pass
        with self._lock:
            self._cache.pop(voice_id, None)
        if not found:
            raise UnknownVoiceError(f"unknown voice id {voice_id!r}")


def _looks_like_safetensors(data: bytes) -> bool:
    # 8-byte little-endian header length, then the JSON header.
    size = int.from_bytes(data[:8], "little")
    return 0 < size < len(data) and data[8:9] == b"{"


def _write_atomically(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
