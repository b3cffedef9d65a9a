"""Whole-pipeline golden audio from the reference (run with the .venv-ref python).

Usage: pipeline_golden.py CONFIG.yaml VOICE.wav OUT.npz --text T --seed S --temp X
                          [--eos-threshold E] [--frames N] [--frames-after-eos F]

Seeds torch *after* loading (module construction consumes the generator), clones the voice,
generates with frame-by-frame decoding (``max_decoder_frames_per_call = 1``), and records the
EOS logit of every flow-LM step. ``--frames N`` pins max_gen_len to N frames.
"""

import argparse
import threading

import numpy as np
import torch

from pocket_tts import TTSModel

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("voice")
p.add_argument("out")
p.add_argument("--text", required=True)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--temp", type=float, default=0.3)
p.add_argument("--eos-threshold", type=float, default=1e9)
p.add_argument("--frames", type=int, default=0)
p.add_argument("--frames-after-eos", type=int, default=None)
p.add_argument("--noise-clamp", type=float, default=None)
args = p.parse_args()

torch.set_num_threads(1)
model = TTSModel.load_model(
    config=args.config,
    temp=args.temp,
    eos_threshold=args.eos_threshold,
    noise_clamp=args.noise_clamp,
)
model.max_decoder_frames_per_call = 1
if args.frames:
    model._estimate_max_gen_len = lambda token_count: args.frames
logits = []
model.flow_lm.out_eos.register_forward_hook(
    lambda mod, inp, out: logits.append(float(out.reshape(-1)[0]))
)
torch.manual_seed(args.seed)
voice = model.get_state_for_audio_prompt(args.voice)
logits.clear()
audio = model.generate_audio(voice, args.text, frames_after_eos=args.frames_after_eos)
for t in threading.enumerate():  # the reference leaves its generation thread running
    if t is not threading.current_thread():
        t.join(timeout=30)
# logits[0] comes from the text prefill (its head output is discarded), then one per step.
np.savez(args.out, audio=audio.numpy(), eos_logits=np.array(logits[1:], dtype=np.float32))
print("ok")
