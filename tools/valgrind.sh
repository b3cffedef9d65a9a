#!/usr/bin/env bash
# valgrind memcheck over one short generation (random english_2m checkpoint, a voice cloned from
# ../shared/data/ref.wav, a few frames): any invalid read or write fails the run.
#
#   tools/valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work="${TMPDIR:-/tmp}/pocket-tts-valgrind"
mkdir -p "$work"
shared="$(cd "${POCKET_TTS_SHARED_DATA:-../shared/data}" && pwd)"  # absolute: the run is elsewhere
[ -f "$work/ckpt/english_2m_2026-10.yaml" ] || .venv/bin/python tools/make_random_checkpoint.py \
    --config english_2m_2026-10 --seed 0 --out "$work/ckpt" --tokenizer "$shared/tokenizer.model"
cat >"$work/run.py" <<PY
import numpy as np
from pocket_tts import TTSModel
model = TTSModel.load_model(config="$work/ckpt/english_2m_2026-10.yaml", seed=0)
model._estimate_max_gen_len = lambda tokens: 8
voice = model.get_state_for_audio_prompt("$shared/ref.wav", truncate=True)
audio = model.generate_audio(voice, "Hello world. Two chunks here.", seed=1)
two = [model.generate_audio_stream(None, "Side by side.", seed=s) for s in (2, 3)]
for a, b in zip(*two):
    pass
assert np.isfinite(audio).all() and len(audio) > 0
print("generated", len(audio), "samples")
PY
# PYTHONMALLOC=malloc: every allocation through malloc, so memcheck sees the real bounds.
cd "$work"
PYTHONMALLOC=malloc POCKET_TTS_PACKED_CACHE=0 valgrind --tool=memcheck \
    --leak-check=no --track-origins=no --show-mismatched-frees=no \
    --suppressions="$OLDPWD/tools/valgrind.supp" \
    --log-file="$work/memcheck.log" "$OLDPWD/.venv/bin/python" "$work/run.py"
grep "ERROR SUMMARY" "$work/memcheck.log"
if grep -qE "Invalid (read|write)|Invalid free|Source and destination overlap" "$work/memcheck.log"; then
    grep -A12 -E "Invalid (read|write)|Invalid free" "$work/memcheck.log" | head -80
    echo "memcheck: invalid accesses (full log: $work/memcheck.log)" >&2
    exit 1
fi
echo "memcheck: no invalid read or write (log: $work/memcheck.log)"
