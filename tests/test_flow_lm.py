"""Flow LM parity with the reference on the same random checkpoint, plus its error paths.

The reference dumps (tools/reference/flow_lm_golden.py): token ids, text embeddings, the KV
caches after a voice-like prompt prefill and after the text prefill, and over 50 teacher-forced
frames with injected noise the head conditioning vector, the EOS logit and the sampled latent.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_reference

from pocket_tts import _native
from pocket_tts.checkpoint.loader import load_weights
from pocket_tts.config import load_config
from pocket_tts.flow_lm import FlowLM

CONFIGS = ["english_2026-10", "english_2m_2026-10"]
FRAMES = 50
TOL = 1e-4


@pytest.fixture(scope="module", params=CONFIGS)
def case(request, random_checkpoint, tmp_path_factory):
    yaml_path, weights_path = random_checkpoint(request.param)
    out = tmp_path_factory.mktemp("golden") / f"{request.param}.npz"
    run_reference("flow_lm_golden.py", yaml_path, out, "--frames", FRAMES, "--prompt-len", 20)
    config = load_config(yaml_path)
    lm = FlowLM(config, load_weights(config, weights_path))
    return lm, dict(np.load(out))


def close(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs difference, relative to the magnitude where values are large."""
    scale = max(1.0, float(np.abs(want).max()))
    return float(np.abs(got - want).max()) / scale


def run_scenario(lm: FlowLM, g: dict, name: str) -> dict:
    """``free`` / ``prompt`` (voice-like prefill first); ``_fused``: the text prefill rides in
    the first frame's pass (as TTSModel runs it), on two threads."""
    st = lm.new_state(256)
    draw = 0
    res = {}
    fused = name.endswith("_fused")
    name = name.removesuffix("_fused")
    if name == "prompt":
        lm.prefill(st, lm.voice_conditioning_from_embeddings(g["prompt"]))
        draw += 1  # the reference draws (and discards) one noise row per prefill call
        res["prompt_kv"] = st.kv[:, :, : st.offset].copy()
    emb = lm.embed_tokens(st, g["tokens"])
    res["emb"] = emb
    if not fused:
        lm.prefill(st, emb)
    draw += 1
    text_end = st.offset + (len(emb) if fused else 0)
    x = np.full(lm.ldim, np.nan, np.float32)
    lat, cond = np.zeros(lm.ldim, np.float32), np.zeros(lm.cond_dim, np.float32)
    conds, eos, lats = [], [], []
    for f in range(FRAMES):
        first = fused and f == 0
        eos.append(
            lm.step(
                st,
                x,
                g["noise"][draw],
                lat,
                cond,
                prefix=emb if first else None,
                threads=2 if first else 1,
            )
        )
        if f == 0:
            res["text_kv"] = st.kv[:, :, :text_end].copy()
        draw += 1
        conds.append(cond.copy())
        lats.append(lat.copy())
        x = g["teacher"][f]
    res.update(cond=np.stack(conds), eos=np.array(eos), latents=np.stack(lats), draws=draw)
    return res


@pytest.mark.parametrize("scenario", ["free", "prompt", "free_fused", "prompt_fused"])
def test_parity_with_reference(case, scenario: str) -> None:
    lm, g = case
    r = run_scenario(lm, g, scenario)
    scenario = scenario.removesuffix("_fused")
    assert r["draws"] == int(g[f"{scenario}_draws"])
    assert close(r["emb"], g["text_embeddings"]) <= 1e-6
    if scenario == "prompt":
        assert close(r["prompt_kv"], g["prompt_prompt_kv"]) <= TOL
    assert r["text_kv"].shape == g[f"{scenario}_text_kv"].shape
    assert close(r["text_kv"], g[f"{scenario}_text_kv"]) <= TOL
    assert close(r["cond"], g[f"{scenario}_cond"]) <= TOL
    assert np.abs(r["eos"] - g[f"{scenario}_eos"]).max() <= TOL
    assert close(r["latents"], g[f"{scenario}_latents"]) <= TOL


def test_noise_generator_matches_torch(case) -> None:
    lm, g = case
    st = _native.NoiseSource()
    std = float(np.float32(0.3**0.5))
    out = np.empty(lm.ldim, np.float32)
    st.seed(0)
    for row in g["torch_noise"]:
        st.normal(out, std)
        assert np.abs(out - row).max() <= 1e-6
    for clamp in (0.5, 0.1):  # both branches of torch's rejection sampler
        st.seed(0)
        for row in g[f"torch_trunc_noise_{clamp}"]:
            st.normal(out, std, clamp)
            assert np.abs(out - row).max() <= 1e-6
            assert np.abs(out).max() <= clamp


def test_rope_frequencies_bit_identical_to_torch() -> None:
    """torch's float32 exp is MKL's, whose code path follows the CPU. Our table is torch's
    values bit for bit on AVX2 machines (MKL_CBWR=AVX pins that path on any CPU); on an
    AVX-512 CPU MKL misses other arguments, and the reference's own values there are within
    one ulp of ours (11 of the 320 differ)."""
    dims = [16, 32, 48, 64, 96, 128, 256]
    avx2_path = json.loads(run_reference("rope_freqs.py", *dims, env={"MKL_CBWR": "AVX"}))
    this_cpu = json.loads(run_reference("rope_freqs.py", *dims))
    for D in dims:
        got = _native.rope_freqs(D).view(np.int32).tolist()
        assert got == avx2_path[str(D)], D
        assert max(abs(a - b) for a, b in zip(got, this_cpu[str(D)], strict=True)) <= 1, D


def test_bad_inputs_leave_model_usable(case) -> None:
    lm, g = case
    st = lm.new_state(len(g["tokens"]) + 2)
    with pytest.raises(ValueError, match="token id"):
        lm.embed_tokens(st, np.array([0, lm.n_bins + 1]))
    with pytest.raises(ValueError, match="prefill input"):
        lm.prefill(st, np.zeros((3, lm.d_model + 1), np.float32))
    with pytest.raises(ValueError, match="overflow"):
        lm.prefill(st, np.zeros((len(g["tokens"]) + 3, lm.d_model), np.float32))
    assert st.offset == 0  # a refused prefill writes nothing
    lm.prefill(st, lm.embed_tokens(st, g["tokens"]))
    x = np.full(lm.ldim, np.nan, np.float32)
    lat, cond = np.zeros(lm.ldim, np.float32), np.zeros(lm.cond_dim, np.float32)
    with pytest.raises(ValueError, match="sizes"):
        lm.step(st, x[:-1], g["noise"][0], lat, cond)
    with pytest.raises(ValueError, match="steps"):
        lm.step(st, x, g["noise"][0], lat, cond, steps=0)
    with pytest.raises(ValueError, match="prefix must be"):
        lm.step(st, x, g["noise"][0], lat, cond, prefix=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="overflow"):
        lm.step(st, x, g["noise"][0], lat, cond, prefix=np.zeros((3, lm.d_model), np.float32))
    lm.step(st, x, g["noise"][0], lat, cond)
    lm.step(st, lat.copy(), g["noise"][1], lat, cond)
    with pytest.raises(ValueError, match="overflow"):
        lm.step(st, lat.copy(), g["noise"][2], lat, cond)
    with pytest.raises(ValueError, match="capacity"):
        lm.new_state(0)
    noise = _native.NoiseSource(0)
    with pytest.raises(ValueError, match="multiple of 16"):
        noise.normal(np.zeros(10, np.float32), 1.0)
    with pytest.raises(ValueError, match="positive"):
        noise.normal(np.zeros(32, np.float32), 1.0, 0.0)
    assert np.isfinite(lat).all()


def test_generic_and_avx2_paths_agree(case) -> None:
    lm, g = case
    outs = []
    for generic in (True, False):
        _native.force_generic(generic)  # one dispatch switch for every kernel
        try:
            outs.append(run_scenario(lm, g, "free")["latents"])
        finally:
            _native.force_generic(False)
    assert np.abs(outs[0] - outs[1]).max() <= TOL


def test_float16_embedding_table(random_checkpoint) -> None:
    """A compact model keeps the text-embedding table as float16 bits: the lookup returns
    exactly the float16-rounded rows of the float32 table."""
    yaml_path, weights_path = random_checkpoint("english_2026-10")
    config = load_config(yaml_path)
    w32 = load_weights(config, weights_path)
    table = w32["flow_lm.conditioner.embed.weight"].copy()
    lm = FlowLM(config, load_weights(config, weights_path, dtype="float16"), dtype="float16")
    tokens = np.array([0, 5, 17, table.shape[0] - 1, 5], np.int64)
    st = lm.new_state(16, max_prefill=len(tokens))
    got = lm.embed_tokens(st, tokens)
    want = table[tokens].astype(np.float16).astype(np.float32)
    assert got.shape == want.shape and np.array_equal(got, want)
    with pytest.raises(ValueError):
        lm.embed_tokens(st, np.array([table.shape[0]], np.int64))
    assert np.array_equal(lm.embed_tokens(st, tokens), want)  # still usable


def test_shared_products_bit_identical(case) -> None:
    """step(threads=SHARED) with another thread helping in help_until (the decoder thread's
    idle time, as TTSModel runs it) gives the same bits as one thread, prefix fused or not."""
    import threading

    lm, g = case
    rng = np.random.default_rng(3)
    prefix = lm.embed_tokens(lm.new_state(8), g["tokens"])
    noise = rng.standard_normal((6, lm.ldim)).astype(np.float32)

    def run(threads: int, progress: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        st = lm.new_state(64, max_prefill=len(prefix))
        lat = np.zeros((len(noise), lm.ldim), np.float32)
        cond = np.zeros(lm.cond_dim, np.float32)
        x = np.full(lm.ldim, np.nan, np.float32)
        for f in range(len(noise)):
            lm.step(
                st, x, noise[f], lat[f], cond, prefix=prefix if f == 0 else None, threads=threads
            )
            x = lat[f]
            if progress is not None:
                _native.progress_store(progress, f + 1)
        return lat, st.kv[:, :, : st.offset].copy()

    alone = run(1, None)
    progress = np.zeros(1, np.int32)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(run(_native.SHARED, progress)))
    worker.start()
    _native.help_until(progress, len(noise))
    worker.join()
    assert np.array_equal(result[0][0], alone[0]) and np.array_equal(result[0][1], alone[1])
    # Nobody helping: the poster computes every chunk itself, same bits.
    shared_alone = run(_native.SHARED, None)
    assert np.array_equal(shared_alone[0], alone[0])


def test_prefill_on_two_cores_bit_identical(case, monkeypatch) -> None:
    """FlowLM.prefill with a helper thread taking chunks of its products (two cores) writes
    the same KV bits as on one core; a refused prefill still releases its helper thread."""
    import threading

    from pocket_tts import flow_lm

    lm, g = case
    cond = np.random.default_rng(4).standard_normal((40, lm.d_model)).astype(np.float32)

    def kv(cores: int) -> np.ndarray:
        monkeypatch.setattr(flow_lm, "cores_available", lambda: cores)
        st = lm.new_state(len(cond), max_prefill=len(cond))
        lm.prefill(st, cond)
        assert st.offset == len(cond)
        return st.kv[:, :, : st.offset].copy()

    assert np.array_equal(kv(1), kv(2))
    monkeypatch.setattr(flow_lm, "cores_available", lambda: 2)
    before = threading.active_count()
    with pytest.raises(ValueError, match="overflow"):
        lm.prefill(lm.new_state(4), cond)
    assert threading.active_count() == before


def test_voice_conditioning_matches_twin(case) -> None:
    """The speaker projection runs on the engine's GEMM (not numpy's BLAS): against a float64
    twin it is within a float32 dot-product budget, and no latents give only the BOS row."""
    lm, _ = case
    inner = lm.speaker_proj.shape[1]
    x = np.random.default_rng(5).standard_normal((37, inner)).astype(np.float32)
    got = lm.voice_conditioning(x)
    w = lm.speaker_proj.astype(np.float64)
    want = x.astype(np.float64) @ w.T
    bos = 0 if lm.bos_before_voice is None else 1
    assert got.shape == (37 + bos, lm.d_model)
    budget = 8 * np.sqrt(inner) * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(w).T)
    assert np.all(np.abs(got[bos:] - want) <= budget + 1e-30)
    if bos:
        assert np.array_equal(got[0], lm.bos_before_voice[0])
    assert lm.voice_conditioning(x[:0]).shape == (bos, lm.d_model)
    with pytest.raises(ValueError, match="voice latents"):
        lm.voice_conditioning(x[:, :-1])


def _batched_vs_alone_streams(lm: FlowLM, g: dict, n: int) -> list[dict]:
    """``n`` streams at different positions: stream i has had 3 * i frames before, and odd
    streams carry a text prefix (of different lengths) into the step."""
    rng = np.random.default_rng(n)
    streams = []
    for i in range(n):
        st = lm.new_state(256)
        if i % 3 == 1:
            lm.prefill(st, lm.voice_conditioning_from_embeddings(g["prompt"][: 5 + i]))
        lat, cond = np.zeros(lm.ldim, np.float32), np.zeros(lm.cond_dim, np.float32)
        x = np.full(lm.ldim, np.nan, np.float32)
        for f in range(3 * i):
            lm.step(st, x, g["noise"][f], lat, cond)
            x = lat.copy()
        prefix = lm.embed_tokens(st, g["tokens"][: 2 + i]) if i % 2 else None
        noise = rng.standard_normal(lm.ldim).astype(np.float32)
        streams.append({"state": st, "x": x, "noise": noise, "prefix": prefix})
    return streams


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_step_batch_is_each_stream_alone(case, n: int) -> None:
    """A batched step gives every stream exactly (bit for bit) what stepping it alone gives:
    different cache offsets, prefixes and noise in one pass over the weights."""
    lm, g = case
    alone, batched = (_batched_vs_alone_streams(lm, g, n) for _ in range(2))
    want = []
    for s in alone:
        lat, cond = np.zeros(lm.ldim, np.float32), np.zeros(lm.cond_dim, np.float32)
        eos = lm.step(s["state"], s["x"], s["noise"], lat, cond, prefix=s["prefix"])
        want.append((lat, cond, eos, s["state"].kv.copy()))
    lats, conds = np.zeros((n, lm.ldim), np.float32), np.zeros((n, lm.cond_dim), np.float32)
    eos = np.zeros(n, np.float32)
    lm.step_batch(
        [s["state"] for s in batched],
        np.stack([s["x"] for s in batched]),
        np.stack([s["noise"] for s in batched]),
        lats,
        conds,
        eos,
        prefixes=[s["prefix"] for s in batched],
        threads=2,
    )
    for i, (lat, cond, e, kv) in enumerate(want):
        assert lats[i].tobytes() == lat.tobytes(), i
        assert conds[i].tobytes() == cond.tobytes(), i
        assert eos[i] == np.float32(e), i
        np.testing.assert_array_equal(batched[i]["state"].kv, kv)
        assert batched[i]["state"].offset == alone[i]["state"].offset


def test_step_batch_refuses_overflow_writing_nothing(case) -> None:
    lm, g = case
    full = lm.new_state(1)
    ok = lm.new_state(8)
    lat = np.zeros((1, lm.ldim), np.float32)
    x = np.full((2, lm.ldim), np.nan, np.float32)
    lm.step(full, x[0], g["noise"][0], lat[0], np.zeros(lm.cond_dim, np.float32))
    before = ok.kv.copy()
    with pytest.raises(ValueError, match="overflow"):
        lm.step_batch(
            [ok, full],
            x,
            g["noise"][:2],
            np.zeros((2, lm.ldim), np.float32),
            np.zeros((2, lm.cond_dim), np.float32),
            np.zeros(2, np.float32),
        )
    assert ok.offset == 0
    np.testing.assert_array_equal(ok.kv, before)
    with pytest.raises(ValueError, match="sizes"):
        lm.step_batch([ok], x, g["noise"][:2], lat, lat, np.zeros(1, np.float32))


def test_released_scratch_regrows_on_use(case) -> None:
    """A state whose prefill scratch was released (the engine's states, stepped by batched
    steps with the engine's scratch) still embeds, steps and samples alone, bit for bit as a
    state that kept it, and owns less memory meanwhile."""
    lm, g = case
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((4, lm.ldim)).astype(np.float32)

    def run(release: bool) -> tuple[np.ndarray, np.ndarray, int]:
        st = lm.new_state(64, max_prefill=len(g["tokens"]))
        full = st.nbytes
        if release:
            st.release_scratch()
            assert st.nbytes < full
        emb = lm.embed_tokens(st, g["tokens"])
        if release:
            st.release_scratch()
        lat = np.zeros((len(noise), lm.ldim), np.float32)
        cond = np.zeros(lm.cond_dim, np.float32)
        x = np.full(lm.ldim, np.nan, np.float32)
        for f in range(len(noise)):
            lm.step(st, x, noise[f], lat[f], cond, prefix=emb if f == 0 else None)
            x = lat[f]
        if release:
            st.release_scratch()
        head = np.zeros(lm.ldim, np.float32)
        lm.kernel.sample_head(st, cond, noise[0], 1, head)
        return np.concatenate([lat.ravel(), head]), emb, st.offset

    kept, released = run(False), run(True)
    assert np.array_equal(kept[0], released[0]) and np.array_equal(kept[1], released[1])
    assert kept[2] == released[2]


def test_shared_prefix_state_steps_as_a_copied_one(case) -> None:
    """A state reading a voice prefix in place (share_prefix, as the engine's streams do) steps
    bit for bit as one that copied it, owns only the positions after it, and leaves it intact;
    a prefix that cannot be shared is refused with a clear error."""
    lm, g = case
    prefix_state = lm.new_state(9)
    lm.prefill(prefix_state, lm.voice_conditioning_from_embeddings(g["prompt"])[:9])
    prefix = np.ascontiguousarray(prefix_state.kv[:, :, : prefix_state.offset])
    frozen = prefix.copy()
    noise = np.random.default_rng(8).standard_normal((3, lm.ldim)).astype(np.float32)

    def run(share: bool):
        st = lm.new_state(len(prefix[0, 0]) + 8, prefix=prefix, share_prefix=share)
        lat = np.zeros((3, lm.ldim), np.float32)
        cond = np.zeros(lm.cond_dim, np.float32)
        x = np.full(lm.ldim, np.nan, np.float32)
        for f in range(3):
            lm.step(st, x, noise[f], lat[f], cond)
            x = lat[f]
        return st, lat

    copied, lat_c = run(False)
    shared, lat_s = run(True)
    assert np.array_equal(lat_c, lat_s)
    assert shared.shared_kv is prefix and shared.shared_positions == prefix.shape[2]
    assert shared.own_kv.shape[2] == shared.capacity - prefix.shape[2]
    assert shared.nbytes < copied.nbytes
    n = copied.offset
    assert shared.offset == n and np.array_equal(shared.kv[:, :, :n], copied.kv[:, :, :n])
    assert np.array_equal(prefix, frozen)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        lm.new_state(20, prefix=prefix[:, :, ::-1], share_prefix=True)
    with pytest.raises(ValueError, match="prefix must be KV"):
        lm.new_state(20, prefix=prefix[:1], share_prefix=True)
