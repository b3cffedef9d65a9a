"""Dump golden flow-LM tensors from the reference (run with the .venv-ref python).

Usage: flow_lm_golden.py CONFIG.yaml OUT.npz --text TEXT --frames N --prompt-len P --seed S

Noise is injected: every ``torch.nn.init.normal_`` call inside the flow LM copies the next row
of a seeded array (standard normals x sqrt(temp), float32), so our engine can consume the same
rows in the same order (including the draw made by each prefill call).
Also dumps torch's own noise for ``torch.manual_seed(seed)`` to check our MT19937 emulation.
"""

import argparse

import numpy as np
import torch

from pocket_tts import TTSModel
from pocket_tts.models.text_chunking import prepare_text_prompt
from pocket_tts.modules.stateful_module import init_states

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("out")
p.add_argument("--text", default="Hello world, this is a test.")
p.add_argument("--frames", type=int, default=50)
p.add_argument("--prompt-len", type=int, default=20)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--temp", type=float, default=0.3)
args = p.parse_args()

torch.set_num_threads(1)
model = TTSModel.load_model(config=args.config, temp=args.temp, eos_threshold=1e9)
lm = model.flow_lm
rng = np.random.default_rng(args.seed)
std = np.float32(args.temp**0.5)
n_draws = 2 * (args.frames + 2) + 4
noise = (rng.standard_normal((n_draws, lm.ldim)).astype(np.float32) * std).astype(np.float32)
teacher = rng.standard_normal((args.frames, lm.ldim)).astype(np.float32)
prompt = rng.standard_normal((1, args.prompt_len, lm.dim)).astype(np.float32)
draw = {"i": 0}


def injected_normal_(t, mean=0.0, std=1.0):
    t.copy_(torch.from_numpy(noise[draw["i"]]).view_as(t))
    draw["i"] += 1
    return t


original_normal_ = torch.nn.init.normal_
torch.nn.init.normal_ = injected_normal_
captured = {}


def eos_hook(module, inputs, output):
    captured["cond"] = inputs[0].detach().reshape(-1).numpy().copy()
    captured["eos"] = float(output.reshape(-1)[0])


lm.out_eos.register_forward_hook(eos_hook)

text, _ = prepare_text_prompt(
    args.text,
    pad_with_spaces_for_short_inputs=model.pad_with_spaces_for_short_inputs,
    remove_semicolons=model.remove_semicolons,
    append_terminal_punctuation=model.append_terminal_punctuation,
    capitalize_first_letter=model.capitalize_first_letter,
    replace_characters=model.replace_characters,
)
tokens = lm.conditioner.prepare(text)
out = {"tokens": tokens.numpy()[0], "noise": noise, "teacher": teacher, "prompt": prompt[0]}
with torch.no_grad():
    out["text_embeddings"] = lm.conditioner(tokens).numpy()[0]


def kv_dump(state):
    layers = []
    for i in range(len(lm.transformer.layers)):
        s = state[f"transformer.layers.{i}.self_attn"]
        end = int(s["offset"][0])
        layers.append(s["cache"][:, 0, :end].numpy().copy())
    return np.stack(layers)  # [L, 2, end, H_kv, D]


def scenario(name, with_prompt):
    draw["i"] = 0
    cap = args.prompt_len + 1 + tokens.shape[1] + args.frames + 4
    state = init_states(lm, batch_size=1, sequence_length=cap)
    with torch.no_grad():
        if with_prompt:
            cond = torch.from_numpy(prompt)
            if lm.insert_bos_before_voice:
                cond = torch.cat([lm.bos_before_voice, cond], dim=1)
            model._run_flow_lm_and_increment_step(model_state=state, audio_conditioning=cond)
            out[f"{name}_prompt_kv"] = kv_dump(state)
        model._run_flow_lm_and_increment_step(model_state=state, text_tokens=tokens)
        out[f"{name}_text_kv"] = kv_dump(state)
        x = torch.full((1, 1, lm.ldim), float("nan"))
        conds, eos, lat = [], [], []
        for f in range(args.frames):
            latent, _ = model._run_flow_lm_and_increment_step(
                model_state=state, backbone_input_latents=x
            )
            conds.append(captured["cond"])
            eos.append(captured["eos"])
            lat.append(latent.reshape(-1).numpy().copy())
            x = torch.from_numpy(teacher[f]).view(1, 1, -1)
    out[f"{name}_cond"] = np.stack(conds)
    out[f"{name}_eos"] = np.array(eos, dtype=np.float32)
    out[f"{name}_latents"] = np.stack(lat)
    out[f"{name}_draws"] = np.array(draw["i"])


scenario("free", with_prompt=False)
scenario("prompt", with_prompt=True)

# torch's own generator, for the MT19937 + Box-Muller emulation check.
torch.nn.init.normal_ = original_normal_
torch.manual_seed(args.seed)
t = torch.empty(1, lm.ldim)
draws = []
for _ in range(8):
    t.normal_(0.0, float(std))
    draws.append(t.reshape(-1).numpy().copy())
out["torch_noise"] = np.stack(draws)
torch.manual_seed(args.seed)
t = torch.empty(1, lm.ldim)
for clamp in (0.5, 0.1):
    torch.manual_seed(args.seed)
    tr = []
    for _ in range(4):
        torch.nn.init.trunc_normal_(t, mean=0.0, std=args.temp**0.5, a=-clamp, b=clamp)
        tr.append(t.reshape(-1).numpy().copy())
    out[f"torch_trunc_noise_{clamp}"] = np.stack(tr)
np.savez(args.out, **out)
print("ok")
