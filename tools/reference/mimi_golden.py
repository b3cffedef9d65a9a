"""Dump golden Mimi / voice-cloning tensors from the reference (run with the .venv-ref python).

mimi_golden.py golden CONFIG.yaml WAV OUT.npz VOICE_OUT.safetensors [--frames N] [--seed S]
    Through the path of ``TTSModel.get_state_for_audio_prompt`` (audio_read -> convert_audio ->
    end_on_pause -> _encode_audio):
      prompt_audio  float32 [T]          the 24 kHz prompt after end_on_pause
      latents       float32 [N, inner]   mimi.encode_to_latent(prompt_audio)
      voice_kv      float32 [L, 2, N(+1), H_kv, D]  the voice state's KV caches (K post-RoPE)
      voice_offset  int64 [L]            each layer's offset
      encode_seconds float               best of 3 timings of encode_to_latent (1 thread)
    and exports the voice state to VOICE_OUT with ``export_model_state``.
    Decoding, as the decode worker with ``max_decoder_frames_per_call = 1``:
      norm_latents  float32 [F, ldim]    seeded normalised latents (as the flow LM emits)
      z             float32 [F, ldim]    norm_latents * emb_std + emb_mean (torch float32)
      audio_raw     float32 [F * 1920]   decode_from_latent frame by frame, one init_states
                                         state, increment_steps(mimi, state, 16) per frame
      audio         float32 [F * 1920]   the same with the 120-sample fade-in on the first frame
mimi_golden.py load-voice CONFIG.yaml VOICE.safetensors OUT.npz
    Load a voice file as the reference does (get_state_for_audio_prompt on a .safetensors
    path) and dump voice_kv / voice_offset / voice_pad as above.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pocket_tts import TTSModel
from pocket_tts.data.audio import audio_read
from pocket_tts.data.audio_utils import convert_audio, end_on_pause
from pocket_tts.models.model_state import export_model_state
from pocket_tts.modules.stateful_module import increment_steps, init_states


def kv_dump(model, state):
    layers, offsets, pads = [], [], []
    for i in range(len(model.flow_lm.transformer.layers)):
        s = state[f"transformer.layers.{i}.self_attn"]
        layers.append(s["cache"][:, 0].numpy().copy())
        offsets.append(int(s["offset"].view(-1)[0]))
        pads.append(int(s["pad"].view(-1)[0]) if "pad" in s else 0)
    return np.stack(layers), np.array(offsets, np.int64), np.array(pads, np.int64)


def golden(args) -> None:
    torch.set_num_threads(1)
    model = TTSModel.load_model(config=args.config)
    mimi = model.mimi
    sr = model.config.mimi.sample_rate
    out = {}

    audio, rate = audio_read(Path(args.wav))
    audio = convert_audio(audio, rate, sr, 1)
    audio = end_on_pause(audio, sr)
    out["prompt_audio"] = audio[0].numpy().copy()
    with torch.no_grad():
        lat = mimi.encode_to_latent(audio.unsqueeze(0))
        out["latents"] = lat[0].numpy().copy()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            mimi.encode_to_latent(audio.unsqueeze(0))
            times.append(time.perf_counter() - t0)
    out["encode_seconds"] = np.array(min(times))

    state = model.get_state_for_audio_prompt(Path(args.wav))
    out["voice_kv"], out["voice_offset"], out["voice_pad"] = kv_dump(model, state)
    export_model_state(state, args.voice_out)

    rng = np.random.default_rng(args.seed)
    ldim = model.flow_lm.ldim
    norm = rng.standard_normal((args.frames, ldim)).astype(np.float32)
    out["norm_latents"] = norm
    z = torch.from_numpy(norm)[None] * model.flow_lm.emb_std + model.flow_lm.emb_mean
    out["z"] = z[0].numpy().copy()
    mimi_state = init_states(mimi, batch_size=1, sequence_length=args.frames * 16)
    raw = []
    with torch.no_grad():
        for f in range(args.frames):
            frame = mimi.decode_from_latent(z[:, f : f + 1], mimi_state)
            raw.append(frame[0, 0].numpy().copy())
            increment_steps(mimi, mimi_state, increment=16)
    audio_raw = np.concatenate(raw)
    out["audio_raw"] = audio_raw
    faded = torch.from_numpy(audio_raw.copy())
    n = sr // 200
    faded[:n] *= torch.linspace(0, 1, n)
    out["audio"] = faded.numpy()
    np.savez(args.out, **out)
    print("ok")


def load_voice(args) -> None:
    torch.set_num_threads(1)
    model = TTSModel.load_model(config=args.config)
    state = model.get_state_for_audio_prompt(Path(args.voice))
    kv, offsets, pads = kv_dump(model, state)
    np.savez(args.out, voice_kv=kv, voice_offset=offsets, voice_pad=pads)
    print("ok")


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("config")
    g.add_argument("wav")
    g.add_argument("out")
    g.add_argument("voice_out")
    g.add_argument("--frames", type=int, default=30)
    g.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("load-voice")
    v.add_argument("config")
    v.add_argument("voice")
    v.add_argument("out")
    args = p.parse_args()
    {"golden": golden, "load-voice": load_voice}[args.cmd](args)


if __name__ == "__main__":
    main()
