"""Prometheus metrics of one server (``GET /metrics``), in a registry of its own so that
several apps in one process (the tests) do not share counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["ServerMetrics"]


class _EngineCollector:
    """Reads the engine's load at scrape time (no polling thread)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Any:
        load = self.engine.load()
        for name, doc, value in (
            ("pocket_tts_active_streams", "Calls holding an engine stream slot.", load.active),
            ("pocket_tts_queue_depth", "Calls waiting for an engine slot.", load.waiting),
            ("pocket_tts_max_streams", "Engine stream slots.", load.max_streams),
            (
                "pocket_tts_engine_load",
                "Estimated frame period / 80 ms (above 1: slower than real time).",
                load.load,
            ),
            (
                "pocket_tts_state_bytes",
                "Per-stream state held by running streams.",
                load.state_bytes,
            ),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


class ServerMetrics:
    """The counters and histograms the handlers update."""

    def __init__(self, engine: Any) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_EngineCollector(engine))
        self.requests = Counter(
            "pocket_tts_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.streams_open = Gauge(
            "pocket_tts_http_streams", "Audio responses being streamed.", registry=self.registry
        )
        self.frames = Counter(
            "pocket_tts_audio_frames", "80 ms audio frames sent.", registry=self.registry
        )
        self.audio_seconds = Counter(
            "pocket_tts_audio_seconds", "Seconds of audio sent.", registry=self.registry
        )
        self.cancelled = Counter(
            "pocket_tts_streams_cancelled",
            "Streams ended early (client gone, time limit, shutdown).",
            registry=self.registry,
        )
        self.ttfa = Histogram(
            "pocket_tts_time_to_first_audio_seconds",
            "Request received to first audio.",
            buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10),
            registry=self.registry,
        )
        self.rtf = Histogram(
            "pocket_tts_real_time_factor",
            "Generation time / audio duration per stream.",
            buckets=(0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4),
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
