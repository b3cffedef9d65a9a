"""``pocket-tts serve``: the HTTP server over the multi-stream engine (``pip install
'pocket-tts-fast[server]'``). :func:`create_app` builds the ASGI app for a loaded model."""

from .app import ApiError, ServerSettings, create_app

__all__ = ["ApiError", "ServerSettings", "create_app"]
