"""The reference's public surface, for the drop-in tests (run with the .venv-ref python).

Usage: surface_golden.py IN.json IN.npz OUT.npz   (prints a JSON report on stdout)

IN.json: ``{"config": YAML, "text_cases": [{"name", "text", "assign": {attr: value},
"update_replace_characters": {...}}], "linspace_steps": [n, ...]}``; IN.npz: ``audio`` and
``audio_nan`` (float32 1-D), standing in for the audio ``generate_audio`` returns.

Reports:

* ``public``: every public name ``TTSModel`` itself defines, with its kind and, for methods,
  ``inspect.signature`` parameters as ``[name, kind, repr(default) or None]``;
* ``text_cases``: for each case, the ``(text, frames_after_eos)`` of every chunk that
  ``generate_audio_stream`` hands to ``_generate_audio_stream_short_text``, with the case's
  attributes set (``set``) and with the loaded defaults (``unset``); nothing is generated;
* ``torch_dtype``: ``str``, module and class name of ``torch.int16``;
* OUT.npz: ``linspace_{n}`` = ``torch.linspace(0, 1, n)``, and the torch-style calls wrappers
  make on audio tensors, applied to ``torch.from_numpy(audio)``.
"""

import argparse
import inspect
import json

import numpy as np
import torch

from pocket_tts import TTSModel

TEXT_ATTRIBUTES = (
    "pad_with_spaces_for_short_inputs",
    "remove_semicolons",
    "append_terminal_punctuation",
    "capitalize_first_letter",
    "replace_characters",
    "model_recommended_frames_after_eos",
)

p = argparse.ArgumentParser()
p.add_argument("spec")
p.add_argument("inputs")
p.add_argument("out")
args = p.parse_args()
with open(args.spec, encoding="utf-8") as f:
    spec = json.load(f)
inputs = np.load(args.inputs)


def parameters(fn):
    return [
        [q.name, q.kind.name, None if q.default is inspect.Parameter.empty else repr(q.default)]
        for q in inspect.signature(fn).parameters.values()
    ]


public = {}
for name, value in vars(TTSModel).items():
    if name.startswith("_"):
        continue
    if isinstance(value, classmethod):
        public[name] = {"kind": "classmethod", "parameters": parameters(getattr(TTSModel, name))}
    elif isinstance(value, property):
        public[name] = {"kind": "property"}
    elif callable(value):
        public[name] = {"kind": "method", "parameters": parameters(value)}
    else:
        public[name] = {"kind": "attribute"}

model = TTSModel.load_model(config=spec["config"])
defaults = {a: getattr(model, a) for a in TEXT_ATTRIBUTES}
recorded = []


def record(**kwargs):
    recorded.append([kwargs["text_to_generate"], kwargs["frames_after_eos"]])
    return iter(())


model._generate_audio_stream_short_text = record


def chunks_of(text):
    recorded.clear()
    for _ in model.generate_audio_stream(None, text):
        pass
    return list(recorded)


text_cases = {}
for case in spec["text_cases"]:
    for attr, value in defaults.items():
        setattr(model, attr, dict(value) if isinstance(value, dict) else value)
    unset = chunks_of(case["text"])
    for attr, value in case.get("assign", {}).items():
        setattr(model, attr, value)
    model.replace_characters.update(case.get("update_replace_characters", {}))
    text_cases[case["name"]] = {"set": chunks_of(case["text"]), "unset": unset}

arrays = {f"linspace_{n}": torch.linspace(0, 1, n).numpy() for n in spec["linspace_steps"]}
t = torch.from_numpy(inputs["audio"].copy())
arrays["numpy"] = t.numpy()
arrays["detach_cpu_numpy"] = t.detach().cpu().numpy()
arrays["clamp"] = t.clamp(-1, 1).numpy()
arrays["clamp_keywords"] = t.clamp(min=-0.5, max=0.25).numpy()
arrays["clamp_min"] = t.clamp(min=-0.5).numpy()
arrays["clamp_max"] = t.clamp(max=0.25).numpy()
arrays["clamp_inverted"] = t.clamp(0.5, -0.5).numpy()
arrays["clamp_nan"] = torch.from_numpy(inputs["audio_nan"].copy()).clamp(-1, 1).numpy()
# pipecat: (chunk.clamp(-1, 1) * 32767).to(torch.int16).numpy()
arrays["int16"] = (t.clamp(-1, 1) * 32767).to(torch.int16).numpy()
arrays["shape"] = np.array(list(t.shape))
np.savez(args.out, **arrays)

print(
    json.dumps(
        {
            "public": public,
            "text_cases": text_cases,
            "torch_dtype": {
                "str": str(torch.int16),
                "module": type(torch.int16).__module__,
                "name": type(torch.int16).__name__,
            },
        }
    )
)
