"""Measure one engine on one checkpoint and print the figures as JSON.

Runs with either Python: ours (this package installed) or the reference's side venv
(PyTorch ``pocket-tts`` 4.0.1): it detects which ``pocket_tts`` it imported and drives each
through its own API, so both are measured by the same code in the same way.

    python benchmarks/measure.py CONFIG.yaml --voice ref.wav [--dtype float16] [--quick]

Figures (medians): load_s (import + load_model, from process start), voice_encode_s (10 s
prompt -> voice state), ttfa_ms (time to first audio chunk, 12-token sentence, cached voice),
lm_step_ms (one flow-LM frame incl. the flow head), mimi_frame_ms (decode one frame),
rtf (wall time / audio time over 100 frames, EOS disabled, both pipeline threads),
peak_rss_mb (what a user's process peaks at: load, voice prompt, the first-audio runs and the
100-frame generation; taken before the per-stage timings, whose extra caches are the harness's).

"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

# The reference package has a default_parameters module; this engine does not.
IS_REFERENCE = importlib.util.find_spec("pocket_tts.default_parameters") is not None
SENTENCE = "Hello world, this is a short test of speech."  # 12 tokens


def peak_rss_mb() -> float:
    """High-water RSS of this process image (VmHWM: unlike ru_maxrss it is not inherited from
    the parent across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def voice_and_first_audio(model, args, res: dict):
    """Voice-prompt encoding and time to first audio, through the API both engines share."""
    res["voice_encode_s"] = median_time(
        lambda: model.get_state_for_audio_prompt(args.voice), 1 if args.quick else 3
    )
    voice = model.get_state_for_audio_prompt(args.voice)

    def first_chunk():
        model._estimate_max_gen_len = lambda n: 4
        t = time.perf_counter()
        first = None
        for _ in model.generate_audio_stream(voice, SENTENCE):
            if first is None:
                first = time.perf_counter() - t
        return first

    first_chunk()
    res["ttfa_ms"] = 1000 * statistics.median(first_chunk() for _ in range(3 if args.quick else 7))
    return voice


def real_time_factor(model, voice, args, res: dict) -> None:
    """Wall time / audio time over ``args.frames`` frames (EOS disabled), then peak RSS (the
    high-water mark so far: load, voice prompt, first audio and this generation)."""
    frames = args.frames
    model._estimate_max_gen_len = lambda n: frames

    def run():
        audio = model.generate_audio(voice, SENTENCE)
        assert audio.shape[-1] == frames * 1920

    res["rtf"] = median_time(run, 1 if args.quick else 3) / (frames * 0.08)
    res["peak_rss_mb"] = peak_rss_mb()


def measure_reference(args) -> dict:
    import torch
    from pocket_tts.modules.stateful_module import increment_steps, init_states

    from pocket_tts import TTSModel

    torch.set_num_threads(1)
    model = TTSModel.load_model(config=args.config, eos_threshold=1e9)
    load_s = time.perf_counter() - _T0
    model.max_decoder_frames_per_call = 0
    res = {"engine": "reference", "dtype": "float32", "load_s": load_s}
    voice = voice_and_first_audio(model, args, res)
    real_time_factor(model, voice, args, res)

    with torch.no_grad():
        import copy

        state = copy.deepcopy(voice)
        model._expand_kv_cache(state, sequence_length=voice_len(voice) + 400)
        x = torch.full((1, 1, model.flow_lm.ldim), float("nan"))
        for _ in range(3):
            model._run_flow_lm_and_increment_step(model_state=state, backbone_input_latents=x)
        res["lm_step_ms"] = 1000 * median_time(
            lambda: model._run_flow_lm_and_increment_step(
                model_state=state, backbone_input_latents=x
            ),
            20 if args.quick else 60,
        )
        mstate = init_states(model.mimi, 1, 16 * 400)
        z = torch.randn(1, 1, model.flow_lm.ldim)

        def decode():
            model.mimi.decode_from_latent(z, mstate)
            increment_steps(model.mimi, mstate, increment=16)

        for _ in range(3):
            decode()
        res["mimi_frame_ms"] = 1000 * median_time(decode, 20 if args.quick else 60)
    return res


def voice_len(voice) -> int:
    return int(next(iter(voice.values()))["offset"][0])


def measure_ours(args) -> dict:
    from pocket_tts import TTSModel

    model = TTSModel.load_model(config=args.config, eos_threshold=1e9, dtype=args.dtype, seed=0)
    load_s = time.perf_counter() - _T0
    res = {"engine": "ours", "dtype": args.dtype, "load_s": load_s}
    voice = voice_and_first_audio(model, args, res)
    real_time_factor(model, voice, args, res)

    lm = model.flow_lm
    state = voice.to_flow_state(lm, voice.offset + 400)
    x = np.full(lm.ldim, np.nan, np.float32)
    noise = np.zeros(lm.ldim, np.float32)
    lat = np.zeros(lm.ldim, np.float32)
    cond = np.zeros(lm.cond_dim, np.float32)
    for _ in range(3):
        lm.step(state, x, noise, lat, cond)
    res["lm_step_ms"] = 1000 * median_time(
        lambda: lm.step(state, x, noise, lat, cond), 20 if args.quick else 60
    )
    dec = model.mimi.new_decoder_state()
    z = np.random.default_rng(0).standard_normal((1, lm.ldim)).astype(np.float32)
    out = np.empty(model.mimi.frame_size, np.float32)
    for _ in range(3):
        model.mimi.decode(dec, z, out)
    res["mimi_frame_ms"] = 1000 * median_time(
        lambda: model.mimi.decode(dec, z, out), 20 if args.quick else 60
    )
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--voice", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    res = measure_reference(args) if IS_REFERENCE else measure_ours(args)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
