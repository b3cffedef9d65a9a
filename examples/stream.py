"""Stream speech as it is generated: play each 80 ms chunk as soon as it is decoded (with the
optional `sounddevice` package) or write it to a WAV file / stdout as it arrives.

    python examples/stream.py --text "Hello from a streaming engine." --voice ref.wav
    python examples/stream.py --text "..." --voice ref.wav --config my.yaml --out - | aplay

Offline (no hub access): pass --config pointing at a local YAML whose weights_path and
tokenizer_path are local files (tools/make_random_checkpoint.py writes such a pair).
"""

from __future__ import annotations

import argparse
import sys
import time

from pocket_tts import TTSModel
from pocket_tts.audio.wav import StreamingWAVWriter


def main() -> int:
    """Parse arguments, load the model, stream the audio."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", required=True)
    p.add_argument("--voice", default=None, help="wav / voice .safetensors / predefined name")
    p.add_argument("--language", default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--out", default=None, help="WAV path or '-' for stdout; default: play")
    args = p.parse_args()

    model = TTSModel.load_model(language=args.language, config=args.config)
    voice = model.get_state_for_audio_prompt(args.voice) if args.voice else None
    t0 = time.perf_counter()
    if args.out is None:
        try:
            import sounddevice
        except ImportError:
            print("install sounddevice to play, or pass --out", file=sys.stderr)
            return 1
        with sounddevice.OutputStream(samplerate=model.sample_rate, channels=1) as player:
            for i, chunk in enumerate(model.generate_audio_stream(voice, args.text)):
                if i == 0:
                    print(
                        f"first audio after {(time.perf_counter() - t0) * 1e3:.0f} ms",
                        file=sys.stderr,
                    )
                player.write(chunk.reshape(-1, 1))
        return 0
    dest = sys.stdout.buffer if args.out == "-" else args.out
    with StreamingWAVWriter(dest, model.sample_rate) as writer:
        for i, chunk in enumerate(model.generate_audio_stream(voice, args.text)):
            if i == 0:
                print(
                    f"first audio after {(time.perf_counter() - t0) * 1e3:.0f} ms", file=sys.stderr
                )
            writer.write(chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
