"""Print torch's float32 RoPE frequencies (as pocket_tts.modules.rope computes them) as JSON
{D: [uint32 bits]} for the head sizes given on the command line (run with .venv-ref)."""

import json
import math
import sys

import torch

out = {}
for D in map(int, sys.argv[1:]):
    ds = torch.arange(D // 2, dtype=torch.float32)
    freqs = torch.exp(ds * (-math.log(10000) * 2 / D))
    out[D] = freqs.view(torch.int32).tolist()
print(json.dumps(out))
