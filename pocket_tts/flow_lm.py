"""Flow LM stage: text tokens and voice conditioning in, normalised latents (and EOS logits) out.

A thin Python layer over the C kernels in ``csrc/flow_lm/`` (driven by ``_native_flow_lm.pxi``):
the :class:`FlowLM` object is read-only and shared; every stream owns a :class:`FlowLMState` (KV
caches sized once, scratch, noise generator)."""

from __future__ import annotations

import os
import threading

import numpy as np

from . import _native
from .checkpoint.layout import StageTensors
from .config import Config

FlowLMState = _native.FlowLMState

__all__ = ["BatchScratch", "FlowLM", "FlowLMState", "cores_available"]


def cores_available() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Rows per block of :meth:`FlowLM.prefill` (a block of a voice prompt takes ~0.05 s).
PREFILL_BLOCK_ROWS = 32


class FlowLM:
    """The flow language model of one config, with weights bound to the C kernels."""

    def __init__(
        self, config: Config, weights: dict[str, np.ndarray], dtype: str = "float32"
    ) -> None:
        """Bind ``weights`` (the ``flow_lm.*`` tensors from
        :func:`pocket_tts.checkpoint.loader.load_weights` with the same ``dtype``: the per-frame
        matrices packed in their storage, everything else float32)."""
        fc = config.flow_lm
        tc = fc.transformer
        attn_dim = tc.attn_dim or tc.d_model
        self.config = config
        self.d_model = tc.d_model
        self.ldim = config.mimi.quantizer.dimension
        self.num_layers = tc.num_layers
        self.num_heads = tc.num_heads
        self.num_kv_heads = tc.num_kv_heads or tc.num_heads
        self.head_dim = attn_dim // tc.num_heads
        self.n_bins = fc.lookup_table.n_bins
        self.flow_type = fc.flow.type
        tensors = StageTensors(config, "flow_lm", weights, dtype)
        self.kernel = _native.FlowLMKernel(
            tensors,
            num_heads=tc.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            ffn_dim=tc.dim_feedforward or tc.d_model * tc.hidden_scale,
            max_period=float(tc.max_period),
            num_layers=tc.num_layers,
            flow_type=fc.flow.type,
            flow_depth=fc.flow.depth,
            n_bins=fc.lookup_table.n_bins,
        )
        self.dtype = dtype
        self.cond_dim = self.kernel.cond_dim
        self.bos_before_voice = (
            np.ascontiguousarray(tensors.take("bos_before_voice").reshape(1, -1))
            if tensors.has("bos_before_voice")
            else None
        )
        self.speaker_proj = tensors.take("speaker_proj")
        # Projected by the engine's own GEMM, not numpy's: a BLAS call wakes a thread pool
        # whose spinning workers then compete with the prefill that follows on both cores.
        self._speaker_proj_panels = _native.pack_nt(self.speaker_proj)
        self.emb_mean = tensors.take("emb_mean")
        self.emb_std = tensors.take("emb_std")
        tensors.finish()

    def new_state(
        self,
        capacity: int,
        max_prefill: int = 512,
        prefix: np.ndarray | None = None,
        share_prefix: bool = False,
    ) -> FlowLMState:
        """A fresh stream state whose KV caches hold ``capacity`` positions, the first ``n``
        filled from ``prefix`` (a voice state's KV ``[L, 2, n, H_kv, D]``) when given: copied,
        or with ``share_prefix`` read in place (C-contiguous float32, never written again)."""
        return self.kernel.new_state(capacity, max_prefill, prefix, share_prefix)

    def embed_tokens(self, state: FlowLMState, tokens: np.ndarray) -> np.ndarray:
        """Text-token embeddings ``[T, d_model]`` (lookup table, low-rank projection if any)."""
        tokens = np.ascontiguousarray(tokens, dtype=np.int64).reshape(-1)
        out = np.empty((tokens.shape[0], self.d_model), dtype=np.float32)
        self.kernel.embed_tokens(state, tokens, out)
        return out

    def voice_conditioning(self, latents: np.ndarray) -> np.ndarray:
        """Voice-prompt conditioning ``[N(+1), d]``: raw encoder latents through the speaker
        projection, with the learned BOS row prepended when the config asks for it."""
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.speaker_proj.shape[1]:
            raise ValueError(
                f"voice latents must be [N, {self.speaker_proj.shape[1]}], got {latents.shape}"
            )
        d = self.speaker_proj.shape[0]
        projected = (
            _native.gemm_packed(np.ascontiguousarray(latents), self._speaker_proj_panels, d)
            if len(latents)
            else np.empty((0, d), np.float32)
        )
        return self.voice_conditioning_from_embeddings(projected)

    def voice_conditioning_from_embeddings(self, cond: np.ndarray) -> np.ndarray:
        """Prepend the learned BOS row (when the config has one) to projected voice
        embeddings ``[N, d]``."""
        cond = np.asarray(cond, dtype=np.float32)
        if self.bos_before_voice is not None:
            cond = np.concatenate([self.bos_before_voice, cond], axis=0)
        return np.ascontiguousarray(cond, dtype=np.float32)

    def prefill(
        self,
        state: FlowLMState,
        embeddings: np.ndarray,
        stop: threading.Event | None = None,
        block_rows: int = PREFILL_BLOCK_ROWS,
    ) -> bool:
        """Append conditioning embeddings ``[T, d_model]`` to the state's KV caches, on both
        cores when there are two: a helper thread takes chunks of every product as it comes
        free (``_native.SHARED``), which keeps both cores busy when one of them is slowed
        down, where a fixed half each waits for the slower one (bit-identical either way).

        The rows go in blocks of about ``block_rows`` (the same bits as one pass: a row's
        result does not depend on the rows beside it), so a long voice prompt answers Ctrl-C,
        or ``stop``, within one block (~0.05 s): returns False when ``stop`` ended it early
        (the state then holds the rows done so far), True when every row is in."""
        x = np.array(embeddings, dtype=np.float32, order="C", copy=True)
        # No block of one row among several: a one-row product takes the GEMV order.
        bounds = list(range(0, len(x), max(2, block_rows))) + [len(x)]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        threads = 1 if cores_available() < 2 else _native.SHARED
        done = np.zeros(1, np.int32)
        helper = None
        if threads == _native.SHARED:
            helper = threading.Thread(
                target=_native.help_until, args=(done, 1), name="pocket-tts-prefill", daemon=True
            )
            helper.start()
        try:
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                if stop is not None and stop.is_set():
                    return False
                self.kernel.prefill(state, x[a:b], threads)
        finally:
            if helper is not None:
                _native.progress_store(done, 1)
                helper.join()
        return True

    def step(
        self,
        state: FlowLMState,
        latent_in: np.ndarray,
        noise: np.ndarray,
        latent_out: np.ndarray,
        cond_out: np.ndarray,
        steps: int = 1,
        prefix: np.ndarray | None = None,
        threads: int = 1,
    ) -> float:
        """One frame: feed ``latent_in`` (NaN = BOS), sample into ``latent_out`` with the given
        ``noise``; returns the raw EOS logit. ``cond_out`` receives the head's conditioning.

        ``prefix`` (conditioning embeddings ``[T, d_model]``) is prefilled in the same pass
        as the frame, which then reads the weights once instead of twice (a text chunk's first
        frame); ``threads=2`` splits the products over both cores (while the decoder idles);
        ``threads=_native.SHARED`` offers them in chunks to a thread in ``_native.help_until``
        (the decoder thread while it waits for this frame). Every mode gives the same bits."""
        return self.kernel.step(
            state, latent_in, noise, steps, latent_out, cond_out, prefix, threads
        )

    def step_batch(
        self,
        states: list[FlowLMState],
        latents_in: np.ndarray,
        noise: np.ndarray,
        latents_out: np.ndarray,
        conds: np.ndarray,
        eos_out: np.ndarray,
        steps: int = 1,
        prefixes: list[np.ndarray | None] | None = None,
        threads: int = 1,
        scratch: BatchScratch | None = None,
    ) -> None:
        """One frame of ``n = len(states)`` streams in one pass over the weights (the GEMV of
        one stream becomes a GEMM over n rows). Row ``i`` of ``latents_in`` / ``noise`` /
        ``latents_out`` ``[n, ldim]``, ``conds`` ``[n, cond_dim]`` and ``eos_out`` ``[n]``
        belongs to ``states[i]``; ``prefixes[i]`` (conditioning ``[T, d_model]`` or None) is
        prefilled in the same pass. Each stream gets bit for bit what :meth:`step` gives it
        alone. ``scratch`` (a :class:`BatchScratch`, reused across calls) avoids allocating
        the work area each frame."""
        rows = len(states) + sum(0 if p is None else len(p) for p in prefixes or ())
        max_keys = max((s.capacity for s in states), default=1)
        work = (scratch or BatchScratch()).get(self, rows, len(states), max_keys)
        self.kernel.step_batch(
            states,
            _f32(latents_in),
            _f32(noise),
            latents_out,
            conds,
            eos_out,
            work,
            steps,
            None if prefixes is None else [None if p is None else _f32(p) for p in prefixes],
            threads,
        )


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class BatchScratch:
    """The work area of batched flow-LM steps, grown to the largest batch seen and then reused
    (an engine allocates it once per model, not per frame)."""

    def __init__(self) -> None:
        """Start empty; the first :meth:`get` allocates."""
        self._buf = np.zeros(0, np.float32)

    def get(self, lm: FlowLM, rows: int, n: int, max_keys: int) -> np.ndarray:
        """A float32 buffer big enough for ``n`` streams, ``rows`` rows, ``max_keys`` keys."""
        need = lm.kernel.batch_scratch_size(rows, n, max_keys)
        if need > self._buf.shape[0]:
            self._buf = np.zeros(need, np.float32)
        return self._buf
