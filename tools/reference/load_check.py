"""Reference-side checks of our safetensors files (run with the reference venv's Python).

load_check.py checkpoint CONFIG.yaml [--stats]
    TTSModel.load_model(config=CONFIG.yaml) (strict load_state_dict) and print JSON:
    the state-dict keys and shapes in order, per-tensor float64 sums (plain and of |x|), and
    the largest difference between the loaded time-embedding ``freqs`` and the ones torch
    builds itself. With --stats, also run the model once (voice from ref.wav if given via
    POCKET_TTS_REF_WAV, else random latents) and report activation magnitudes.
load_check.py read FILE.safetensors
    Read FILE with the official safetensors library; print dtype, shape and the float64 sum
    of each tensor (BF16 widened to float32).
load_check.py write OUT.safetensors
    Write a fixed mixed-dtype file with the official library (for byte comparison).
"""

import json
import math
import os
import sys
import threading

import torch


def _sums(t: torch.Tensor) -> list[float]:
    x = t.detach().to(torch.float64)
    return [float(x.sum()), float(x.abs().sum())]


def checkpoint(config_path: str, stats: bool) -> dict:
    from pocket_tts.modules.mlp import TimestepEmbedder

    from pocket_tts import TTSModel

    model = TTSModel.load_model(config=config_path)
    sd = model.state_dict()
    out = {
        "n_keys": len(sd),
        "keys": [[k, list(v.shape)] for k, v in sd.items()],
        "dtypes": sorted({str(v.dtype) for v in sd.values()}),
        "sums": {k: _sums(v) for k, v in sd.items()},
        "has_voice_cloning": model.has_voice_cloning,
    }
    freqs = [k for k in sd if k.endswith(".freqs")]
    if freqs:
        own = TimestepEmbedder(8).freqs
        out["freqs_max_diff"] = max(float((sd[k] - own).abs().max()) for k in freqs)
    if stats:
        out["stats"] = run_stats(model)
    return out


def run_stats(model) -> dict:
    """One short pass through every part of the model, reporting RMS values."""
    torch.manual_seed(0)
    rms = lambda t: float(t.detach().double().pow(2).mean().sqrt())  # noqa: E731
    res = {}
    cfg = model.config
    ldim = cfg.mimi.quantizer.dimension
    # Mimi decoder on random normalised latents, de-normalised as in generation.
    from pocket_tts.modules.stateful_module import init_states

    lat = torch.randn(1, 8, ldim)
    z = lat * model.flow_lm.emb_std + model.flow_lm.emb_mean
    state = init_states(model.mimi, batch_size=1, sequence_length=8 * 16)
    with torch.no_grad():
        audio = model.mimi.decode_from_latent(z, state)
    res["decode_audio_rms"] = rms(audio)
    # Mimi encoder on one second of noise-like audio.
    wav = torch.randn(1, 1, 24000) * 0.1
    with torch.no_grad():
        enc = model.mimi.encode_to_latent(wav)
    res["encode_latent_rms"] = rms(enc)
    # Full generation with a voice from encoded audio.
    with torch.no_grad():
        voice = model.get_state_for_audio_prompt(wav[0])
        gen = model.generate_audio(voice, "Hello world, this is a test.")
    # The reference never joins its daemon generation thread; one still unwinding at interpreter
    # exit can abort the process ("terminate called without an active exception").
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(timeout=60)
    res["generated_samples"] = int(gen.shape[-1])
    res["generated_rms"] = rms(gen)
    res["generated_finite"] = bool(torch.isfinite(gen).all())
    return res


def read(path: str) -> dict:
    from safetensors import safe_open

    out = {}
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        for k in f.keys():
            t = f.get_tensor(k)
            dt = str(t.dtype).removeprefix("torch.")
            x = t.to(torch.float64) if t.dtype != torch.bool else t.to(torch.int64)
            s = float(x.sum()) if x.numel() else 0.0
            out[k] = {"dtype": dt, "shape": list(t.shape), "sum": s if math.isfinite(s) else str(s)}
    return {"metadata": meta, "tensors": out}


def write(path: str) -> dict:
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 5, generator=g)
    tensors = {
        "f32": base,
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "f64": base.to(torch.float64),
        "i64": torch.arange(7, dtype=torch.int64) - 3,
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "i16": torch.arange(4, dtype=torch.int16),
        "i8": torch.tensor([-1, 2, -3], dtype=torch.int8),
        "u8": torch.tensor([1, 2, 250], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 4),
        "a/b.c": torch.ones(2),
    }
    save_file(tensors, path, metadata={"format": "pt", "note": "héllo"})
    return {"written": path}


def main() -> None:
    cmd, arg = sys.argv[1], sys.argv[2]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if cmd == "checkpoint":
        res = checkpoint(arg, "--stats" in sys.argv[3:])
    elif cmd == "read":
        res = read(arg)
    elif cmd == "write":
        res = write(arg)
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
