"""Resolving model files: local paths, ``hf://`` Hub locations and ``http(s)://`` URLs.

This is the reference's ``download_if_necessary`` (``pocket_tts/utils/utils.py``) plus the
weights fallback of ``TTSModel._from_pydantic_config_with_weights``, with clear errors:

* ``hf://owner/repo/path/in/repo[@revision]`` goes through ``huggingface_hub.hf_hub_download``
  and its cache (``HF_HUB_CACHE`` / ``HF_HOME``). ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are
  honoured even when set after ``huggingface_hub`` was imported. ``hf://datasets/...`` and
  ``hf://spaces/...`` select those repo types. A file pinned to a commit and already in the cache
  is returned by ``hf_hub_download`` without any request; the cache layout is the library's.
* ``http(s)://`` URLs are downloaded once into ``~/.cache/pocket_tts`` (or
  ``$POCKET_TTS_CACHE_DIR``) under ``sha256(url) + suffix``, the reference's cache layout.
* Anything else is a local path.

Failures are :class:`HubError` (an ``OSError``) naming the location: :class:`HubOfflineError`
(offline mode or network failure, not cached), :class:`HubNotFoundError` (no such repo,
revision or file; also a ``FileNotFoundError``) and :class:`GatedRepoError` (HTTP 401/403:
gated or private, no access), translated from the classes of ``huggingface_hub.errors``.
:func:`resolve_weights` uses them to fall back to ``weights_path_without_voice_cloning`` as the
reference does.

This module also owns what a location string means everywhere in the package:
:func:`is_remote_path` (is it downloaded?) and :func:`location_path` (its file part, without an
``@revision`` or a URL query, for checking its suffix).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from .checkpoint.safetensors import chmod_as_created

__all__ = [
    "PREDEFINED_VOICES",
    "PREDEFINED_VOICE_ORIGINS",
    "PREDEFINED_VOICES_REPO",
    "PREDEFINED_VOICES_REVISION",
    "VOICE_CLONING_UNSUPPORTED",
    "GatedRepoError",
    "HfLocation",
    "HubError",
    "HubNotFoundError",
    "HubOfflineError",
    "cache_dir",
    "download_url",
    "is_remote_path",
    "location_path",
    "parse_hf_path",
    "predefined_voice_path",
    "resolve_path",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

_URL_TIMEOUT_SECONDS = 60.0
_REMOTE_PREFIXES = ("hf://", "http://", "https://")
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# ----------------------------------------------------------------------------------------------
# Predefined voices (reference: pocket_tts/utils/utils.py)
# ----------------------------------------------------------------------------------------------

PREDEFINED_VOICE_ORIGINS: dict[str, str] = {
    "cosette": "hf://kyutai/tts-voices/expresso/ex04-ex02_confused_001_channel1_499s.wav",
    "marius": "hf://kyutai/tts-voices/voice-donations/Selfie.wav",
    "javert": "hf://kyutai/tts-voices/voice-donations/Butter.wav",
    "alba": "hf://kyutai/tts-voices/alba-mackenna/casual.wav",
    "jean": "hf://kyutai/tts-voices/ears/p010/freeform_speech_01_enhanced.wav",
    "anna": "hf://kyutai/tts-voices/vctk/p228_023_enhanced.wav",
    "vera": "hf://kyutai/tts-voices/vctk/p229_023_enhanced.wav",
    "fantine": "hf://kyutai/tts-voices/vctk/p244_023_enhanced.wav",
    "charles": "hf://kyutai/tts-voices/vctk/p254_023_enhanced.wav",
    "paul": "hf://kyutai/tts-voices/vctk/p259_023_enhanced.wav",
    "eponine": "hf://kyutai/tts-voices/vctk/p262_023_enhanced.wav",
    "azelma": "hf://kyutai/tts-voices/vctk/p303_023_enhanced.wav",
    "george": "hf://kyutai/tts-voices/vctk/p315_023_enhanced.wav",
    "mary": "hf://kyutai/tts-voices/vctk/p333_023_enhanced.wav",
    "jane": "hf://kyutai/tts-voices/vctk/p339_023_enhanced.wav",
    "michael": "hf://kyutai/tts-voices/vctk/p360_023_enhanced.wav",
    "eve": "hf://kyutai/tts-voices/vctk/p361_023_enhanced.wav",
    "bill_boerst": "hf://kyutai/tts-voices/voice-zero/bill_boerst.wav",
    "peter_yearsley": "hf://kyutai/tts-voices/voice-zero/peter_yearsley.wav",
    "stuart_bell": "hf://kyutai/tts-voices/voice-zero/stuart_bell.wav",
    "caro_davy": "hf://kyutai/tts-voices/voice-zero/caro_davy.wav",
    "giovanni": "hf://kyutai/pocket-tts/common_voice_it_36520747-enhanced-v2.mp3@64ab7d24c479d736a83b8cc666c4a776fca30fda",
    "lola": "hf://kyutai/pocket-tts/common_voice_es_19762977-enhanced-v2.mp3@64ab7d24c479d736a83b8cc666c4a776fca30fda",
    "juergen": "hf://kyutai/pocket-tts/de-DE-juergen.mp3@64ab7d24c479d736a83b8cc666c4a776fca30fda",
    "rafael": "hf://kyutai/pocket-tts/g-Vi8PgmSY0-enhanced-v2.wav@64ab7d24c479d736a83b8cc666c4a776fca30fda",
    "daan": "hf://kyutai/pocket-tts/cml_tts_nl_11290_9412_000030_0001.flac@2dd944b099d06bb9edbd221fef138685711d9bf0",
    "estelle": "hf://kyutai/tts-voices/unmute-prod-website/developpeuse-3.wav@1fc7395b7e012e2bbebfca14b942a4ef62ccc899",
}  # fmt: skip
"""Audio each predefined voice was computed from (``_ORIGINS_OF_PREDEFINED_VOICES``)."""

PREDEFINED_VOICES: tuple[str, ...] = tuple(PREDEFINED_VOICE_ORIGINS)
"""The 27 predefined voice names, in the reference's order."""

PREDEFINED_VOICES_REPO = "kyutai/pocket-tts-without-voice-cloning"
"""Hub repo holding the precomputed voice states (``languages/<stem>/embeddings/<name>``)."""

PREDEFINED_VOICES_REVISION = "a7056f505a4a8ca72d8b5fb1440071d6f1a35739"
"""Commit the reference pins the predefined voice states to (``get_predefined_voice``)."""

VOICE_CLONING_UNSUPPORTED = (
    "We could not download the weights for the model with voice cloning, "
    "but you're trying to use voice cloning. "
    f"Without voice cloning, you can use our catalog of voices {list(PREDEFINED_VOICES)}. "
    "If you want access to the model with voice cloning, go to "
    "https://huggingface.co/kyutai/pocket-tts and accept the terms, "
    "then make sure you're logged in locally with `uvx hf auth login`."
)
"""The reference's error message when cloning is requested from the fallback weights."""


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


class HubError(OSError):
    """A remote file could not be obtained; ``location`` is the ``hf://`` path or URL."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class HubOfflineError(HubError):
    """Offline mode is on, or the server could not be reached, and the file is not cached.

    ``reason`` says which (for example ``"offline mode is on (HF_HUB_OFFLINE=1)"``)."""

    def __init__(self, message: str, location: str | None = None, reason: str = "") -> None:
        super().__init__(message, location)
        self.reason = reason


class HubNotFoundError(HubError, FileNotFoundError):
    """The repository, revision, file or URL does not exist (HTTP 404, or repo not found)."""


class GatedRepoError(HubError):
    """Access denied (HTTP 401/403): a gated or private repo whose terms were not accepted."""


# ----------------------------------------------------------------------------------------------
# Locations
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HfLocation:
    """A parsed ``hf://`` location."""

    repo_id: str
    filename: str
    revision: str | None = None
    repo_type: str = "model"

    @property
    def uri(self) -> str:
        """The location written back as ``hf://...[@revision]``."""
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        rev = f"@{self.revision}" if self.revision is not None else ""
        return f"hf://{prefix}{self.repo_id}/{self.filename}{rev}"


def is_remote_path(path: object) -> TypeGuard[str]:
    """True for ``hf://``, ``http://`` and ``https://`` strings: the locations to download.

    Anything else, every ``os.PathLike`` included, is a local path.
    """
    return isinstance(path, str) and path.startswith(_REMOTE_PREFIXES)


def _split_revision(location: str) -> tuple[str, str | None]:
    """``"...file@rev"`` -> ``("...file", "rev")``; without an ``@``, the revision is None."""
    head, at, revision = location.rpartition("@")
    return (head, revision) if at else (location, None)


def location_path(location: str | os.PathLike[str]) -> str:
    """The file part of a location, to check its suffix (``.yaml``, ``.safetensors``, ``.json``).

    ``hf://owner/repo/file.ext@revision`` -> ``hf://owner/repo/file.ext`` (the revision is what
    follows the last ``@``, as :func:`parse_hf_path` reads it); an ``http(s)://`` URL -> its path,
    without query or fragment; anything else (a local path) -> unchanged, as a string.
    """
    if not is_remote_path(location):
        return os.fspath(location)
    if location.startswith("hf://"):
        return _split_revision(location)[0]
    return urllib.parse.urlsplit(location).path


def parse_hf_path(path: str) -> HfLocation:
    """Split ``hf://[datasets/|spaces/]owner/repo/path/in/repo[@revision]`` into its parts.

    As in the reference, the repo id is the first two components and everything after an
    ``@`` in the file part is the revision (which may hold slashes, e.g. ``refs/pr/1``).
    Raises ``ValueError`` for a malformed location.
    """
    if not isinstance(path, str) or not path.startswith("hf://"):
        raise ValueError(f"not an hf:// location: {path!r}")
    parts = path.removeprefix("hf://").split("/")
    repo_type = "model"
    if parts and parts[0] in ("datasets", "spaces"):
        repo_type = parts[0][:-1]
        parts = parts[1:]
    if len(parts) < 3:
        raise ValueError(
            f"malformed hf:// location {path!r}: expected hf://owner/repo/path/in/repo[@revision]"
        )
    owner, repo = parts[0], parts[1]
    if not (_REPO_PART_RE.match(owner) and _REPO_PART_RE.match(repo)):
        raise ValueError(f"malformed hf:// location {path!r}: bad repo id {owner}/{repo!s}")
    filename, revision = _split_revision("/".join(parts[2:]))
    if revision is not None:
        if not revision:
            raise ValueError(f"malformed hf:// location {path!r}: empty revision after '@'")
    if (
        not filename
        or filename.endswith("/")
        or any(p in ("", ".", "..") for p in filename.split("/"))
    ):
        raise ValueError(f"malformed hf:// location {path!r}: bad file path {filename!r}")
    return HfLocation(f"{owner}/{repo}", filename, revision, repo_type)


# ----------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _offline() -> bool:
    # Read at each call: huggingface_hub reads HF_HUB_OFFLINE only once, when it is imported.
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cache_dir() -> Path:
    """Folder for ``http(s)://`` downloads: ``$POCKET_TTS_CACHE_DIR`` or ``~/.cache/pocket_tts``.

    The default is the reference's cache folder, so files it downloaded are reused.
    """
    env = os.environ.get("POCKET_TTS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pocket_tts"


# ----------------------------------------------------------------------------------------------
# hf:// downloads
# ----------------------------------------------------------------------------------------------


def _status_code(exc: BaseException) -> int | None:
    code = getattr(getattr(exc, "response", None), "status_code", None)
    return code if isinstance(code, int) else None


def _access_denied(loc: HfLocation, status: int | None) -> GatedRepoError:
    return GatedRepoError(
        f"Access to {loc.uri} was denied (HTTP {status or 'error'}): {loc.repo_id} is a gated "
        f"or private repository. Accept its terms at https://huggingface.co/{loc.repo_id} and "
        "log in (`hf auth login`, or set HF_TOKEN).",
        loc.uri,
    )


#: Seconds to wait for a TCP connection to the hub before calling it unreachable.
_PROBE_TIMEOUT_SECONDS = 3.0
#: How long a probe's answer is reused (one load resolves several files).
_PROBE_TTL_SECONDS = 30.0
_probes: dict[tuple[str, int], tuple[float, str | None]] = {}
_OFFLINE_ROUTES = (
    "Fixes: a local config (--config, or load_model(config=...), whose weights_path and "
    "tokenizer_path are local files); HF_HUB_OFFLINE=1 once the files are in the cache; or "
    "the network (check HF_ENDPOINT and proxies)."
)


def _not_cached(where: str, reason: str, cache_root: object) -> HubOfflineError:
    return HubOfflineError(
        f"Cannot download {where}: {reason}, and it is not in the Hugging Face cache "
        f"({cache_root}). {_OFFLINE_ROUTES}",
        where,
        reason,
    )


def _unreachable(endpoint: str | None) -> str | None:
    """Why the hub's host cannot be reached (None: it can): one TCP connection with a short
    timeout, remembered for a while. huggingface_hub would instead retry with back-off for
    tens of seconds per file before giving up."""
    import socket
    import time

    url = urllib.parse.urlparse(endpoint or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    now = time.monotonic()
    seen = _probes.get((host, port))
    if seen is not None and now - seen[0] < _PROBE_TTL_SECONDS:
        return seen[1]
    reason: str | None = None
    try:
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_SECONDS).close()
    except OSError as exc:
        reason = f"{host} cannot be reached ({exc.strerror or exc})"
    _probes[(host, port)] = (now, reason)
    return reason


def _resolve_hf(loc: HfLocation, cache: str | os.PathLike[str] | None) -> Path:
    # Imported on first use, not with the module: huggingface_hub's HTTP stack takes ~0.15 s.
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.errors import GatedRepoError as HfGatedRepoError

    where = loc.uri
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None
    offline = _offline()
    cache_root = cache if cache is not None else constants.HF_HUB_CACHE

    def download(local_only: bool) -> str:
        return hf_hub_download(
            repo_id=loc.repo_id,
            filename=loc.filename,
            revision=loc.revision,
            repo_type=loc.repo_type,
            cache_dir=None if cache is None else os.fspath(cache),
            endpoint=endpoint,
            local_files_only=local_only,
        )

    unreachable = None if offline else _unreachable(endpoint)
    if unreachable is not None:  # no network: the cache or a short error, not minutes of retries
        try:
            return Path(download(local_only=True))
        except Exception as exc:  # noqa: BLE001 - not in the cache, whatever the class
            raise _not_cached(where, unreachable, cache_root) from exc
    try:
        local = download(local_only=offline)
    # The order matters: GatedRepoError is a RepositoryNotFoundError, LocalEntryNotFoundError an
    # EntryNotFoundError, and (before huggingface_hub 1.0) every entry error an HfHubHTTPError.
    except HfGatedRepoError as exc:
        raise _access_denied(loc, _status_code(exc)) from exc
    except RepositoryNotFoundError as exc:
        raise HubNotFoundError(
            f"Cannot download {where}: repository {loc.repo_id} was not found (if it is private "
            "or gated, log in with `hf auth login` or set HF_TOKEN).",
            where,
        ) from exc
    except RevisionNotFoundError as exc:
        raise HubNotFoundError(
            f"Cannot download {where}: revision {loc.revision!r} does not exist in {loc.repo_id}.",
            where,
        ) from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        if offline or isinstance(exc, OfflineModeIsEnabled):
            raise _not_cached(where, "offline mode is on (HF_HUB_OFFLINE=1)", cache_root) from exc
        raise _not_cached(where, "the Hugging Face Hub could not be reached", cache_root) from exc
    except EntryNotFoundError as exc:
        revision = "" if loc.revision is None else f" at revision {loc.revision}"
        raise HubNotFoundError(
            f"Cannot download {where}: file {loc.filename!r} does not exist in "
            f"{loc.repo_id}{revision}.",
            where,
        ) from exc
    except HfHubHTTPError as exc:
        status = _status_code(exc)
        if status in (401, 403):
            raise _access_denied(loc, status) from exc
        raise HubError(f"Cannot download {where}: {exc}", where) from exc
    except (ConnectionError, TimeoutError) as exc:
        reason = f"the Hugging Face Hub could not be reached ({type(exc).__name__}: {exc})"
        raise _not_cached(where, reason, cache_root) from exc
    except Exception as exc:  # noqa: BLE001 - the HTTP client's own errors, a full disk...
        # ...still name the file, and resolve_weights falls back on any HubError.
        raise HubError(f"Cannot download {where}: {type(exc).__name__}: {exc}", where) from exc
    return Path(local)


# ----------------------------------------------------------------------------------------------
# http(s):// downloads
# ----------------------------------------------------------------------------------------------


def download_url(url: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Download an ``http(s)://`` URL once into the cache folder and return the cached file.

    The file is named ``sha256(url) + suffix of the URL path`` (the reference's layout), written
    to a temporary file and renamed when complete. A cached file is returned without any
    request; in offline mode (``HF_HUB_OFFLINE``) a missing one raises
    :class:`HubOfflineError`. HTTP 401/403 raise :class:`GatedRepoError`, 404/410
    :class:`HubNotFoundError`, network failures :class:`HubOfflineError`.
    """
    folder = Path(cache) if cache is not None else cache_dir()
    suffix = Path(urllib.parse.urlparse(url).path).suffix
    target = folder / (hashlib.sha256(url.encode()).hexdigest() + suffix)
    if target.is_file():
        return target
    if _offline():
        raise HubOfflineError(
            f"Cannot download {url}: offline mode is on (HF_HUB_OFFLINE=1) and it is not in "
            f"the cache ({folder}).",
            url,
        )
    # Imported here, not with the module: http.client costs ~30 ms to import.
    from urllib.error import HTTPError, URLError
    from urllib.request import Request, urlopen

    folder.mkdir(parents=True, exist_ok=True)
    request = Request(url, headers={"User-Agent": "pocket-tts-fast"})
    tmp_name = None
    try:
        with urlopen(request, timeout=_URL_TIMEOUT_SECONDS) as response:
            expected = response.headers.get("Content-Length")
            with tempfile.NamedTemporaryFile(
                dir=folder, prefix=target.name + ".", suffix=".incomplete", delete=False
            ) as tmp:
                tmp_name = tmp.name
                chmod_as_created(tmp.fileno())
                shutil.copyfileobj(response, tmp, 1 << 20)
                size = tmp.tell()
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise HubError(
                f"Cannot download {url}: got {size} bytes, expected {expected} (truncated)", url
            )
        os.replace(tmp_name, target)
        tmp_name = None
    except HTTPError as exc:
        if exc.code in (401, 403):
            raise GatedRepoError(
                f"Access to {url} was denied (HTTP {exc.code}); it may need authentication.", url
            ) from exc
        if exc.code in (404, 410):
            raise HubNotFoundError(
                f"Cannot download {url}: not found (HTTP {exc.code})", url
            ) from exc
        raise HubError(f"Cannot download {url}: HTTP {exc.code} {exc.reason}", url) from exc
    except URLError as exc:
        raise HubOfflineError(
            f"Cannot download {url}: the server could not be reached ({exc.reason})", url
        ) from exc
    except (ConnectionError, TimeoutError) as exc:
        raise HubOfflineError(f"Cannot download {url}: network error ({exc})", url) from exc
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------


def resolve_path(
    path: str | os.PathLike[str], *, cache: str | os.PathLike[str] | None = None
) -> Path:
    """Return a local file for ``path``, downloading ``hf://`` and ``http(s)://`` locations.

    * ``hf://owner/repo/file[@revision]`` -> ``huggingface_hub.hf_hub_download`` (Hub cache,
      or ``cache``). A commit-pinned file already cached is returned without any request; a
      branch or tag costs one HEAD request to check for updates.
    * ``http(s)://...`` -> :func:`download_url` (cached in :func:`cache_dir`, or ``cache``).
    * anything else -> a local path, ``~`` expanded and otherwise returned as is (not checked
      for existence, as in the reference, so that a relative path can still be resolved
      against a config's folder by ``Config.resolve_local``).

    Raises :class:`HubError` subclasses for download failures and ``ValueError`` for a
    malformed ``hf://`` location.
    """
    if is_remote_path(path):
        if path.startswith("hf://"):
            return _resolve_hf(parse_hf_path(path), cache)
        return download_url(path, cache)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"resolve_path expects a str or path, got {type(path).__name__}")
    return Path(path).expanduser()


#: The predefined voice of each language (the reference's defaults); others: alba.
_VOICE_BY_LANGUAGE = {
    "italian": "giovanni",
    "spanish": "lola",
    "german": "juergen",
    "portuguese": "rafael",
    "french": "estelle",
    "dutch": "daan",
}


def default_voice_for_language(language: str | None) -> str:
    """The predefined voice used when none is named, for a packaged language (None: English)."""
    lang = language or "english"
    return next((v for k, v in _VOICE_BY_LANGUAGE.items() if k in lang), "alba")


def predefined_voice_path(language_config_stem: str, name: str) -> str:
    """``hf://`` location of predefined voice ``name``'s state for a packaged language config.

    ``language_config_stem`` is the config file's stem (``"english"``, ``"french_24l"``...), as
    the reference's ``get_predefined_voice``; pass the result to :func:`resolve_path`. Raises
    ``ValueError`` for an unknown voice name (with a suggestion) or a malformed stem.
    """
    if name not in PREDEFINED_VOICE_ORIGINS:
        close = difflib.get_close_matches(str(name), PREDEFINED_VOICES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown predefined voice {name!r}.{hint} Available: {list(PREDEFINED_VOICES)}"
        )
    if (
        not isinstance(language_config_stem, str)
        or not language_config_stem
        or any(c in language_config_stem for c in "/\\@:")
        or language_config_stem.startswith(".")
    ):
        raise ValueError(f"Invalid language config stem: {language_config_stem!r}")
    return (
        f"hf://{PREDEFINED_VOICES_REPO}/languages/{language_config_stem}/embeddings/"
        f"{name}.safetensors@{PREDEFINED_VOICES_REVISION}"
    )


def _fallback_message(primary: str, fallback: str, exc: HubError) -> str:
    if isinstance(exc, GatedRepoError):
        repo = parse_hf_path(primary).repo_id if primary.startswith("hf://") else primary
        reason = (
            f"the voice-cloning weights {primary} are gated and this machine has no access "
            f"(accept the terms at https://huggingface.co/{repo} and log in with "
            "`hf auth login` or set HF_TOKEN)"
        )
    else:
        reason = f"the voice-cloning weights could not be obtained ({exc})"
    return (
        f"Using the weights without voice cloning ({fallback}) because {reason}. Predefined "
        "voices still work; cloning a voice from audio is disabled."
    )


def resolve_weights(config: Any) -> tuple[Path | None, bool]:
    """Local file of a config's ``weights_path`` and whether it supports voice cloning.

    Mirrors the reference: ``weights_path`` is resolved (downloaded) first; if that fails with a
    :class:`HubError` (gated repo, offline and not cached, not found...) and the config has a
    ``weights_path_without_voice_cloning``, that file is used instead, a warning explains why,
    and ``has_voice_cloning`` is False. Without a fallback the error propagates. A missing
    *local* file raises ``FileNotFoundError`` with no fallback (the reference fails on it too).
    Returns ``(None, True)`` when the config has no ``weights_path`` (the model is then built
    from ``flow_lm.weights_path`` / ``mimi.weights_path``, or left uninitialised).

    Relative local paths are resolved with ``config.resolve_local`` when it exists.
    """
    primary = getattr(config, "weights_path", None)
    fallback = getattr(config, "weights_path_without_voice_cloning", None)
    if primary is None:
        return None, True
    resolve_local = getattr(config, "resolve_local", None)

    def locate(p: str) -> Path:
        path = resolve_path(resolve_local(p) if callable(resolve_local) else p)
        if not path.is_file():  # only local paths can get here without existing
            raise FileNotFoundError(f"Model weights file not found: {str(path)!r}")
        return path

    try:
        return locate(primary), True
    except HubError as exc:
        if fallback is None:
            raise
        try:
            path = locate(fallback)
        except HubOfflineError as exc2:
            if not isinstance(exc, HubOfflineError):
                raise
            # The usual first run without the hub: one short line, not both files' stories.
            raise HubOfflineError(
                f"Cannot obtain the model weights ({primary}, or its fallback without voice "
                f"cloning): {exc2.reason}, and they are not in the Hugging Face cache. "
                f"{_OFFLINE_ROUTES}",
                exc2.location,
                exc2.reason,
            ) from exc2
        except HubError as exc2:
            raise type(exc2)(
                f"Could not obtain the model weights. {primary}: {str(exc).rstrip('.')}. "
                f"Fallback without voice cloning {fallback}: {exc2}",
                exc2.location,
            ) from exc2
        logger.warning(_fallback_message(str(primary), str(fallback), exc))
        return path, False
