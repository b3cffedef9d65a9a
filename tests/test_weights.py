"""Strict checkpoint loading, aligned buffers, random checkpoints, and the reference loading
our random checkpoints with its strict loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import yaml
from conftest import REPO, TOKENIZER_MODEL, run_reference

from pocket_tts.checkpoint import cache as weight_cache
from pocket_tts.checkpoint import safetensors as st_module
from pocket_tts.checkpoint.layout import expected_tensors, tensor_table
from pocket_tts.checkpoint.loader import (
    CheckpointError,
    load_weights,
    unpack_panels,
)
from pocket_tts.checkpoint.safetensors import (
    RawTensor,
    SafetensorsError,
    float32_to_bfloat16_bits,
    read_header,
    read_safetensors,
    write_safetensors,
)
from pocket_tts.checkpoint.storage import STORAGE_DTYPES, StorageClass, aligned_empty
from pocket_tts.config import load_config
from pocket_tts.testing import (
    CONFIG_DIR,
    make_random_checkpoint,
    random_weights,
    timestep_freqs,
)

SMALL = "english_2m_2026-10"


@pytest.fixture(scope="module")
def small():
    """(config, random float32 weights) of the 2m model."""
    cfg = load_config(SMALL)
    return cfg, random_weights(cfg, seed=1)


def _storage(cfg, key):
    """The storage class the tensor table gives ``key``."""
    return {e.key: e.storage for e in tensor_table(cfg)}[key]


def _file_layout(loaded, key, shape, cfg):
    """A loaded tensor in the file's layout (the LM's and Mimi transformers' matrices are stored
    packed)."""
    arr = loaded[key]
    return unpack_panels(arr, shape[0]) if _storage(cfg, key).packed else arr


def _check_arrays(weights, cfg):
    assert list(weights) == list(expected_tensors(cfg))
    for key, arr in weights.items():
        assert arr.dtype == np.float32, key
        assert arr.flags.c_contiguous, key
        assert arr.ctypes.data % 64 == 0, key
        assert arr.flags.writeable, key
        base = arr.base
        assert isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.base is None, key


# ---------------------------------------------------------------------------------- aligned_empty


@pytest.mark.parametrize("shape", [(), 0, 1, 7, (3, 5), (0, 4), (2, 3, 4), (4001, 1024)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.uint8])
def test_aligned_empty(shape, dtype):
    a = aligned_empty(shape, dtype)
    want = (shape,) if isinstance(shape, int) else shape
    assert a.shape == want and a.dtype == dtype
    assert a.ctypes.data % 64 == 0 and a.flags.c_contiguous and a.flags.writeable
    a[...] = 1
    assert aligned_empty(want, dtype, alignment=4096).ctypes.data % 4096 == 0


def test_aligned_empty_rejects_bad_alignment():
    for bad in (0, -64, 48):
        with pytest.raises(ValueError, match="power of two"):
            aligned_empty((2,), np.float32, alignment=bad)


# ------------------------------------------------------------------------------------ loading


def test_load_float32(tmp_path, small):
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    loaded = load_weights(cfg, path)
    _check_arrays(loaded, cfg)
    for k, v in weights.items():
        np.testing.assert_array_equal(_file_layout(loaded, k, v.shape, cfg), v)
    loaded["flow_lm.bos_emb"][:] = 0  # owned: writing does not touch the file or other loads
    np.testing.assert_array_equal(
        read_safetensors(path)["flow_lm.bos_emb"], weights["flow_lm.bos_emb"]
    )


def test_load_f16_and_bf16_widen_exactly(tmp_path, small):
    cfg, weights = small
    keys = list(weights)
    mixed, want = {}, {}
    for i, k in enumerate(keys):
        if i % 3 == 0:
            mixed[k] = weights[k].astype(np.float16)
            want[k] = mixed[k].astype(np.float32)
        elif i % 3 == 1:
            bits = float32_to_bfloat16_bits(weights[k])
            mixed[k] = RawTensor("BF16", bits)
            want[k] = (bits.astype(np.uint32) << 16).view(np.float32)
        else:
            mixed[k] = weights[k]
            want[k] = weights[k]
    path = tmp_path / "mixed.safetensors"
    write_safetensors(path, mixed)
    assert {t.dtype for t in read_header(path).tensors.values()} == {"F16", "BF16", "F32"}
    loaded = load_weights(cfg, path)
    _check_arrays(loaded, cfg)
    for k in keys:
        got = _file_layout(loaded, k, want[k].shape, cfg)
        np.testing.assert_array_equal(got.view(np.uint32), want[k].view(np.uint32))


def test_strict_errors_are_reported_together(tmp_path, small):
    cfg, weights = small
    bad = dict(weights)
    del bad["flow_lm.bos_emb"]
    del bad["mimi.decoder.model.11.conv.bias"]
    bad["flow_lm.extra"] = np.zeros(3, np.float32)
    bad["mimi.decoder.model.99.conv.weight"] = np.zeros(3, np.float32)
    bad["flow_lm.emb_std"] = np.ones(31, np.float32)
    bad["flow_lm.z_proj.weight"] = weights["flow_lm.z_proj.weight"].T.copy()
    bad["flow_lm.emb_mean"] = weights["flow_lm.emb_mean"].astype(np.float64)
    bad["flow_lm.out_eos.bias"] = np.zeros(1, np.int64)
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, bad)
    with pytest.raises(CheckpointError) as info:
        load_weights(cfg, path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.missing == ["flow_lm.bos_emb", "mimi.decoder.model.11.conv.bias"]
    assert sorted(err.unexpected) == ["flow_lm.extra", "mimi.decoder.model.99.conv.weight"]
    assert err.wrong_shape == [
        ("flow_lm.emb_std", (32,), (31,)),
        ("flow_lm.z_proj.weight", (64, 112), (112, 64)),
    ]
    assert err.wrong_dtype == [("flow_lm.emb_mean", "F64"), ("flow_lm.out_eos.bias", "I64")]
    msg = str(err)
    for name in (
        "flow_lm.bos_emb",
        "mimi.decoder.model.11.conv.bias",
        "flow_lm.extra",
        "mimi.decoder.model.99.conv.weight",
        "flow_lm.emb_std (expected [32], found [31])",
        "flow_lm.z_proj.weight",
        "flow_lm.emb_mean (F64)",
        "flow_lm.out_eos.bias (I64)",
        str(path),
    ):
        assert name in msg


def test_wrong_config_is_a_checkpoint_error(tmp_path, small):
    _, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    with pytest.raises(CheckpointError) as info:
        load_weights(load_config("english_7m_2026-10"), path)
    assert info.value.wrong_shape and info.value.missing


def test_malformed_file_is_a_safetensors_error(tmp_path, small):
    cfg, _ = small
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x10\0\0\0\0\0\0\0not json at all!")
    with pytest.raises(SafetensorsError):
        load_weights(cfg, path)


def test_dtype_argument(tmp_path, small):
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    with pytest.raises(ValueError, match="unknown weight dtype"):
        load_weights(cfg, path, dtype="float64")
    key = "flow_lm.transformer.layers.0.linear1.weight"
    ref = weights[key]
    packed = load_weights(cfg, path)[key]
    assert np.array_equal(unpack_panels(packed, ref.shape[0]), ref)  # float32: exact
    for dtype in ("float16", "bfloat16", "int8"):
        low = load_weights(cfg, path, dtype=dtype)
        assert low["flow_lm.out_norm.weight"].dtype == np.float32  # only LM matrices shrink
        assert low[key].ctypes.data % 64 == 0 and low[key].flags.c_contiguous
        stored = unpack_panels(low[key], ref.shape[0])
        if dtype == "float16":
            back = stored.view(np.float16).astype(np.float32)
            tol = 1e-3
        elif dtype == "bfloat16":
            back = (stored.astype(np.uint32) << 16).view(np.float32)
            tol = 8e-3
        else:
            assert stored.dtype == np.int8 and np.abs(stored).max() <= 127
            back = stored.astype(np.float32) * low[key + ".scale"][: ref.shape[0], None]
            tol = 1e-2
        err = np.abs(back - ref).max() / np.abs(ref).max()
        assert 0 < err <= tol, (dtype, err)


def test_flow_head_storage(tmp_path, small):
    """The flow head's Linear weights are streamed every frame like the transformer's: packed
    in the model's dtype (int8 models keep an fp16 head); its norms and biases stay float32."""
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    key = "flow_lm.flow_net.res_blocks.0.adaLN_modulation.1.weight"
    ref = weights[key]
    assert _storage(cfg, key) is StorageClass.HEAD_MATRIX
    assert _storage(cfg, "flow_lm.flow_net.res_blocks.0.in_ln.weight") is StorageClass.FLOAT32
    assert _storage(cfg, "flow_lm.flow_net.res_blocks.0.mlp.0.bias") is StorageClass.FLOAT32
    for dtype, want in [("float32", np.float32), ("float16", np.uint16), ("int8", np.uint16)]:
        low = load_weights(cfg, path, dtype=dtype)
        stored = unpack_panels(low[key], ref.shape[0])
        assert stored.dtype == want and key + ".scale" not in low, dtype
        assert low["flow_lm.flow_net.res_blocks.0.mlp.0.bias"].dtype == np.float32
        back = stored if dtype == "float32" else stored.view(np.float16).astype(np.float32)
        np.testing.assert_allclose(back, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_side_storage(tmp_path, small):
    """Compact models keep the Mimi transformers' matrices (packed) and the text-embedding
    table in float16, rounded to nearest even exactly as numpy; float32 models keep float32."""
    embedding_table_key = "flow_lm.conditioner.embed.weight"
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    codec = [k for k in weights if _storage(cfg, k) is StorageClass.CODEC_MATRIX]
    assert codec and all(k.startswith("mimi.") and _storage(cfg, k).packed for k in codec)
    assert all(".transformer.layers." in k for k in codec)
    norm = "mimi.decoder_transformer.transformer.layers.0.norm1.weight"
    assert _storage(cfg, norm) is StorageClass.FLOAT32
    assert _storage(cfg, embedding_table_key) is StorageClass.EMBEDDING_TABLE
    side = [StorageClass.CODEC_MATRIX, StorageClass.EMBEDDING_TABLE, StorageClass.CODEC_CONV]
    for storage in side:
        assert [storage.dtype(d) for d in STORAGE_DTYPES] == ["float32"] + ["float16"] * 3
    for dtype in STORAGE_DTYPES:
        low = load_weights(cfg, path, dtype=dtype)
        table = low[embedding_table_key]
        if dtype == "float32":
            assert np.array_equal(table, weights[embedding_table_key])
        else:
            want = weights[embedding_table_key].astype(np.float16).view(np.uint16)
            assert table.dtype == np.uint16 and np.array_equal(table, want)
        for key in codec:
            ref = weights[key]
            stored = unpack_panels(low[key], ref.shape[0])
            want = ref if dtype == "float32" else ref.astype(np.float16).view(np.uint16)
            assert np.array_equal(stored, want), (dtype, key)
        assert low["mimi.decoder.model.0.conv.weight"].dtype == np.float32


@pytest.mark.parametrize("storage", ["F32", "BF16"])
def test_no_second_full_copy(tmp_path, small, storage):
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    if storage == "BF16":
        weights = {k: RawTensor("BF16", float32_to_bfloat16_bits(v)) for k, v in weights.items()}
    write_safetensors(path, weights)
    total = sum(4 * int(np.prod(s)) for s in expected_tensors(cfg).values())
    tracemalloc.start()
    try:
        loaded = load_weights(cfg, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    largest = max(v.nbytes for v in loaded.values())
    # the result itself, plus at most one tensor's worth of temporaries and per-array slack
    assert peak < total + largest + 64 * len(loaded) + 2_000_000, (peak, total)


# -------------------------------------------------------------------------- random checkpoints


def test_random_weights_are_seeded_and_sensible(small):
    cfg, weights = small
    again = random_weights(cfg, seed=1)
    other = random_weights(cfg, seed=2)
    for k in weights:
        np.testing.assert_array_equal(weights[k], again[k])
    assert not np.array_equal(
        weights["flow_lm.input_linear.weight"], other["flow_lm.input_linear.weight"]
    )
    w = weights
    assert w["flow_lm.speaker_proj_weight"].std() == pytest.approx(1 / np.sqrt(32), rel=0.1)
    assert (w["flow_lm.emb_std"] >= 0.5).all() and (w["flow_lm.emb_std"] <= 1.5).all()
    assert np.abs(w["flow_lm.emb_mean"]).max() < 0.5
    assert w["flow_lm.conditioner.embed.weight"].std() == pytest.approx(1.0, rel=0.05)
    assert w["flow_lm.transformer.layers.0.linear1.weight"].std() == pytest.approx(
        1 / np.sqrt(112), rel=0.1
    )
    assert w["flow_lm.out_norm.weight"].mean() == pytest.approx(1.0, abs=0.05)
    scales = [v for k, v in w.items() if "layer_scale" in k]
    assert scales and all(((s >= 0.01) & (s <= 0.1)).all() for s in scales)
    conv = w["mimi.decoder.model.0.conv.weight"]  # [192, 128, 3]
    assert conv.std() == pytest.approx(1 / np.sqrt(128 * 3), rel=0.1)
    big = random_weights(load_config("english_2026-10"), seed=0)
    freqs = big["flow_lm.flow_net.time_embed.0.freqs"]
    np.testing.assert_array_equal(freqs, big["flow_lm.flow_net.time_embed.1.freqs"])
    np.testing.assert_allclose(freqs, np.exp(-np.log(10000) * np.arange(128) / 128), rtol=1e-6)
    assert freqs.dtype == np.float32 and freqs[0] == 1.0
    np.testing.assert_array_equal(freqs, timestep_freqs())
    for k, v in big.items():
        assert v.dtype == np.float32 and np.isfinite(v).all(), k


def test_make_random_checkpoint_files(tmp_path):
    yaml_path, weights_path = make_random_checkpoint(SMALL, 3, tmp_path / "out", TOKENIZER_MODEL)
    assert yaml_path.name == f"{SMALL}.yaml" and weights_path.name == f"{SMALL}.safetensors"
    cfg = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    assert cfg["weights_path"] == str(weights_path) and weights_path.is_absolute()
    assert "weights_path_without_voice_cloning" not in cfg
    assert cfg["flow_lm"]["lookup_table"]["tokenizer"] == "sentencepiece"
    assert cfg["flow_lm"]["lookup_table"]["tokenizer_path"] == str(TOKENIZER_MODEL.resolve())
    packaged = yaml.safe_load((CONFIG_DIR / f"{SMALL}.yaml").read_text(encoding="utf-8"))
    for section in ("mimi", "default_eos_threshold", "replace_characters"):
        assert cfg[section] == packaged[section]
    header = read_header(weights_path)
    assert header.metadata == {"config": SMALL, "seed": "3", "kind": "random"}
    shapes = {k: t.shape for k, t in header.tensors.items()}
    assert shapes == expected_tensors(load_config(yaml_path))
    assert {t.dtype for t in header.tensors.values()} == {"F32"}
    # no tokenizer: the packaged tokenizer lines are kept
    y2, _ = make_random_checkpoint(SMALL, 3, tmp_path / "plain")
    plain = yaml.safe_load(y2.read_text(encoding="utf-8"))
    assert plain["flow_lm"]["lookup_table"] == packaged["flow_lm"]["lookup_table"]
    # odd characters in the path are quoted
    y3, w3 = make_random_checkpoint(SMALL, 3, tmp_path / "a b: #c")
    assert yaml.safe_load(y3.read_text(encoding="utf-8"))["weights_path"] == str(w3)


def test_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "make_random_checkpoint.py"),
            "--config",
            SMALL,
            "--seed",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert str(tmp_path / f"{SMALL}.yaml") in out
    cfg = load_config(SMALL)
    np.testing.assert_array_equal(
        load_weights(cfg, tmp_path / f"{SMALL}.safetensors")["flow_lm.bos_emb"],
        random_weights(cfg, 1)["flow_lm.bos_emb"],
    )


# --------------------------------------------------------------------------------- reference


@pytest.mark.parametrize("config_name", ["english_2026-10", SMALL])
def test_reference_loads_random_checkpoint(random_checkpoint, config_name):
    yaml_path, weights_path = random_checkpoint(config_name)
    ref = json.loads(run_reference("load_check.py", "checkpoint", str(yaml_path), "--stats"))
    cfg = load_config(yaml_path)
    expected = expected_tensors(cfg)
    assert ref["n_keys"] == len(expected)
    assert [(k, tuple(s)) for k, s in ref["keys"]] == list(expected.items())  # same order too
    assert ref["dtypes"] == ["torch.float32"]
    assert ref["has_voice_cloning"] is True
    ours = load_weights(cfg, weights_path)
    for key, (total, abs_total) in ref["sums"].items():
        x = ours[key].astype(np.float64)
        assert x.sum() == pytest.approx(total, rel=1e-9, abs=1e-9), key
        assert np.abs(x).sum() == pytest.approx(abs_total, rel=1e-9), key
    if "freqs_max_diff" in ref:  # torch's own float32 exp vs our correctly rounded one
        assert ref["freqs_max_diff"] <= 6e-8
    stats = ref["stats"]
    assert stats["generated_finite"] and stats["generated_samples"] % 1920 == 0
    for name in ("decode_audio_rms", "encode_latent_rms", "generated_rms"):
        assert 1e-3 < stats[name] < 10, (name, stats)


def _cache_files(tmp_path):
    return sorted((tmp_path / "cache" / "packed").glob("*.safetensors"))


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_packed_cache_roundtrip(tmp_path, monkeypatch, small, dtype):
    """First load writes the packed matrices; later loads read them back (aligned, owned) and
    get exactly what packing produces; a changed checkpoint gets a new entry."""
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path / "cache"))
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    fresh = load_weights(cfg, path, dtype=dtype)
    first = load_weights(cfg, path, dtype=dtype, cache=True)
    weight_cache.wait_for_saves()
    files = _cache_files(tmp_path)
    assert len(files) == 1
    second = load_weights(cfg, path, dtype=dtype, cache=True)
    assert list(second) == list(fresh)
    per_frame = (StorageClass.LM_MATRIX, StorageClass.HEAD_MATRIX)
    mapped = 0
    for key, arr in fresh.items():
        assert np.array_equal(first[key], arr) and np.array_equal(second[key], arr), key
        matrix = key if key in weights else key.removesuffix(".scale")  # an int8 scale's matrix
        if _storage(cfg, matrix) in per_frame:
            assert second[key].flags.writeable and second[key].ctypes.data % 64 == 0
            mapped += 1
    assert mapped >= 4 * cfg.flow_lm.transformer.num_layers
    # A rewritten checkpoint (new mtime/size) is a different cache entry.
    changed = dict(weights)
    key = "flow_lm.transformer.layers.0.linear1.weight"
    changed[key] = weights[key] * 2
    write_safetensors(path, changed)
    os.utime(path, ns=(1, 1))
    again = load_weights(cfg, path, dtype=dtype, cache=True)
    weight_cache.wait_for_saves()
    assert len(_cache_files(tmp_path)) == 2
    assert np.array_equal(again[key], load_weights(cfg, path, dtype=dtype)[key])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8"])
def test_packed_cache_is_a_safetensors_file(tmp_path, monkeypatch, small, dtype):
    """The cache file is plain safetensors: our strict reader and the official library read it;
    it holds exactly the tensors the load converts (packed matrices, int8 scales, the narrowed
    embedding table), with the safetensors dtype of their bits, and its metadata names the
    checkpoint it was made from."""
    cfg, path, fresh = _primed_cache(tmp_path, monkeypatch, small, dtype)
    (cached,) = _cache_files(tmp_path)
    header = read_header(cached)
    wanted = {}
    for e in tensor_table(cfg):
        if e.storage.packed or (e.storage is StorageClass.EMBEDDING_TABLE and dtype != "float32"):
            storage = e.storage.dtype(dtype)
            wanted[e.key] = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}.get(
                storage, "I8"
            )
            if storage == "int8":
                wanted[e.key + ".scale"] = "F32"
    assert {k: t.dtype for k, t in header.tensors.items()} == wanted
    assert header.metadata["source"] == os.path.realpath(path)
    assert header.metadata["dtype"] == dtype
    raw = read_safetensors(cached, raw_bf16=True)
    for name, arr in raw.items():
        assert arr.shape == fresh[name].shape, name
        assert np.array_equal(arr.view(fresh[name].dtype), fresh[name]), name
    ref = json.loads(run_reference("load_check.py", "read", str(cached)))
    assert ref["metadata"] == header.metadata
    assert set(ref["tensors"]) == set(wanted)
    for name, info in ref["tensors"].items():
        assert info["shape"] == list(fresh[name].shape), name
        want = raw[name]
        if wanted[name] == "F16":
            want = want.view(np.float16)
        elif wanted[name] == "BF16":
            want = (want.astype(np.uint32) << 16).view(np.float32)
        assert info["sum"] == pytest.approx(float(np.sum(want, dtype=np.float64)), rel=1e-6), name


def test_first_load_does_not_wait_for_the_cache_write(tmp_path, monkeypatch, small):
    """The first load returns once the weights are packed; the cache file is written by a
    background thread (held here until the load has returned), complete once it finishes."""
    import threading

    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path / "cache"))
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    release = threading.Event()
    real_save = weight_cache.save_packed

    def held_save(*args):
        assert release.wait(30)
        real_save(*args)

    monkeypatch.setattr(weight_cache, "save_packed", held_save)
    first = load_weights(cfg, path, dtype="float16", cache=True)  # returns with the write held
    assert not list((tmp_path / "cache").rglob("*.safetensors"))
    release.set()
    weight_cache.wait_for_saves()
    assert len(_cache_files(tmp_path)) == 1
    again = load_weights(cfg, path, dtype="float16", cache=True)
    for key, arr in first.items():
        assert np.array_equal(again[key], arr), key


def _primed_cache(tmp_path, monkeypatch, small, dtype: str):
    """(config, checkpoint path, its weights loaded without the cache), with the packed cache
    of that checkpoint written to a private cache folder."""
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path / "cache"))
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    fresh = load_weights(cfg, path, dtype=dtype)
    load_weights(cfg, path, dtype=dtype, cache=True)
    weight_cache.wait_for_saves()
    return cfg, path, fresh


def test_packed_cache_parallel_read(tmp_path, monkeypatch, small):
    """The cache is read in pieces on two threads: with tiny pieces (every tensor split, both
    threads busy) the arrays are still exactly the packed ones."""
    cfg, path, fresh = _primed_cache(tmp_path, monkeypatch, small, "int8")
    monkeypatch.setattr(st_module, "READ_PIECE_BYTES", 64)
    got = load_weights(cfg, path, dtype="int8", cache=True)
    for key, arr in fresh.items():
        assert np.array_equal(got[key], arr), key


def _old_format_cache(path, arrays) -> None:
    """Write ``arrays`` in the cache's previous private format (magic, u64 header length,
    JSON ``{"tensors": {name: [dtype, shape, offset]}}``, 64-byte-aligned data)."""
    import struct

    entries, offset = {}, 0
    for name, a in arrays.items():
        entries[name] = [a.dtype.name, list(a.shape), offset]
        offset += -(-a.nbytes // 64) * 64

    def header(base: int) -> str:
        return json.dumps({"tensors": {k: [d, s, base + o] for k, (d, s, o) in entries.items()}})

    base = -(-(16 + len(header(10**12))) // 64) * 64  # room for the offsets' digits
    head = header(base).encode().ljust(base - 16)
    with open(path, "wb") as f:
        f.write(b"PTTSPACK" + struct.pack("<Q", len(head)) + head)
        for name, a in arrays.items():
            f.seek(base + entries[name][2])
            f.write(np.ascontiguousarray(a).tobytes())


@pytest.mark.parametrize(
    "damage",
    [
        "truncate",
        "garbage",
        "length",
        "header",
        "old_format",
        "metadata",
        "missing_tensor",
        "extra_tensor",
        "shape",
        "dtype",
        "random_bytes",
        "no_checksums",
    ],
)
def test_packed_cache_damaged_file_is_rebuilt(tmp_path, monkeypatch, small, damage, caplog):
    """A cache file that is not a valid safetensors file, or a valid one whose metadata or
    tensors differ from what the load wants (an older format, another dtype's bits under the
    same name, a tensor missing, extra or reshaped), is ignored: the load packs afresh and the
    file is rewritten whole."""
    cfg, path, fresh = _primed_cache(tmp_path, monkeypatch, small, "float16")
    (cached,) = _cache_files(tmp_path)
    raw = bytearray(cached.read_bytes())
    header = read_header(cached)
    tensors = read_safetensors(cached, raw_bf16=True)
    name = next(iter(header.tensors))  # an F16 matrix
    assert header.tensors[name].dtype == "F16"
    rewrite = {k: RawTensor(header.tensors[k].dtype, v) for k, v in tensors.items()}
    metadata = dict(header.metadata)
    if damage == "truncate":
        cached.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "garbage":
        cached.write_bytes(b"\xff" * 64)
    elif damage == "length":
        raw[:8] = b"NOTPACK!"
        cached.write_bytes(bytes(raw))
    elif damage == "header":
        raw[8:12] = b"{{{{"
        cached.write_bytes(bytes(raw))
    elif damage == "old_format":
        _old_format_cache(cached, {k: fresh[k] for k in tensors})
    elif damage == "random_bytes":  # a valid file whose tensor bytes changed on disk
        raw[-3000:-2000] = np.random.default_rng(0).integers(0, 256, 1000, np.uint8).tobytes()
        cached.write_bytes(bytes(raw))
        read_header(cached)
    else:
        if damage == "metadata":
            metadata["source_size"] = "1"
        elif damage == "missing_tensor":
            del rewrite[name]
        elif damage == "extra_tensor":
            rewrite["flow_lm.extra"] = np.zeros(3, np.float32)
        elif damage == "shape":
            rewrite[name] = RawTensor("F16", tensors[name].reshape(-1))
        elif damage == "no_checksums":
            del metadata["checksums"]
        else:  # the same bits labelled bfloat16
            rewrite[name] = RawTensor("BF16", tensors[name])
        write_safetensors(cached, rewrite, metadata=metadata)
        read_header(cached)  # still a valid safetensors file
    with caplog.at_level("WARNING", logger="pocket_tts"):
        got = load_weights(cfg, path, dtype="float16", cache=True)
    for key, arr in fresh.items():
        assert np.array_equal(got[key], arr), key
    if damage in ("random_bytes", "no_checksums"):  # said, not silently trusted
        assert "is damaged" in caplog.text and "packing the weights again" in caplog.text
    weight_cache.wait_for_saves()
    assert load_weights(cfg, path, dtype="float16", cache=True).keys() == fresh.keys()
    rebuilt = read_header(cached)  # rewritten whole
    assert rebuilt.metadata == header.metadata
    assert {k: (t.dtype, t.shape) for k, t in rebuilt.tensors.items()} == {
        k: (t.dtype, t.shape) for k, t in header.tensors.items()
    }


def test_packed_cache_keeps_the_most_recently_used_within_its_bound(tmp_path, monkeypatch, small):
    """Past POCKET_TTS_PACKED_CACHE_MAX_MB the least recently used entries go (a load touches
    the entry it uses; the one just written always stays); clear() empties the folder."""
    cfg, path, _ = _primed_cache(tmp_path, monkeypatch, small, "float32")
    (f32,) = _cache_files(tmp_path)
    one = f32.stat().st_size
    monkeypatch.setenv("POCKET_TTS_PACKED_CACHE_MAX_MB", str(1.6 * one / 2**20))
    os.utime(f32, (1, 1))  # used long ago
    load_weights(cfg, path, dtype="int8", cache=True)
    weight_cache.wait_for_saves()
    assert len(_cache_files(tmp_path)) == 2  # int8 is smaller: both fit
    load_weights(cfg, path, dtype="float32", cache=True)  # a hit: touches the float32 entry
    load_weights(cfg, path, dtype="float16", cache=True)
    weight_cache.wait_for_saves()
    names = {p.name for p in _cache_files(tmp_path)}
    assert f32.name in names and len(names) == 2  # the int8 entry, least recently used, went
    monkeypatch.setenv("POCKET_TTS_PACKED_CACHE_MAX_MB", "0")
    load_weights(cfg, path, dtype="bfloat16", cache=True)
    weight_cache.wait_for_saves()
    assert len(_cache_files(tmp_path)) == 1  # only the entry just written
    files, size = weight_cache.clear()
    assert files == 1 and size > 0 and _cache_files(tmp_path) == []


def test_packed_cache_disabled_or_unwritable(tmp_path, monkeypatch, small, caplog):
    cfg, weights = small
    path = tmp_path / "w.safetensors"
    write_safetensors(path, weights)
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("POCKET_TTS_PACKED_CACHE", "0")
    load_weights(cfg, path, cache=True)
    assert not (tmp_path / "cache").exists()
    monkeypatch.delenv("POCKET_TTS_PACKED_CACHE")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(blocker))
    with caplog.at_level("WARNING", logger="pocket_tts"):
        got = load_weights(cfg, path, cache=True)
        weight_cache.wait_for_saves()
    assert "packed-weights cache" in caplog.text
    key = "flow_lm.transformer.layers.0.linear1.weight"
    assert np.array_equal(got[key], load_weights(cfg, path)[key])


# ------------------------------------------------------------------------- binding by consumer


def _field_kinds(path) -> set[tuple[str, str]]:
    return {(e.consumer.stage, e.consumer.field) for e in tensor_table(load_config(path))}


def _binding_configs() -> list[str]:
    """Packaged configs, smallest first, each adding a (stage, field) the ones before lack:
    together they hold every consumer field of every packaged config."""
    from pocket_tts.checkpoint.layout import parameter_count

    paths = sorted(CONFIG_DIR.glob("*.yaml"), key=lambda p: parameter_count(load_config(p)))
    need = set().union(*(_field_kinds(p) for p in paths))
    chosen, covered = [], set()
    for p in paths:
        if not _field_kinds(p) <= covered:
            chosen.append(p.stem)
            covered |= _field_kinds(p)
    assert covered == need
    return chosen


@pytest.mark.parametrize("config_name", _binding_configs())
def test_every_consumer_field_is_bound(random_checkpoint, config_name):
    """FlowLM and Mimi take every tensor of their stage from the table by consumer (they raise
    if one is left over) for configs holding every field of every packaged config, in float32
    and in int8 (scales, fp16 head, fp16 codec and table); the bound kernels run."""
    from pocket_tts.flow_lm import FlowLM
    from pocket_tts.mimi import Mimi

    yaml_path, weights_path = random_checkpoint(config_name)
    cfg = load_config(yaml_path)
    for dtype in ("float32", "int8"):
        weights = load_weights(cfg, weights_path, dtype=dtype)
        lm = FlowLM(cfg, weights, dtype=dtype)
        mimi = Mimi(cfg, {k: v for k, v in weights.items() if k.startswith("mimi.")}, dtype)
        st = lm.new_state(8)
        lm.prefill(st, lm.embed_tokens(st, np.array([1, 2, 3])))
        lat, cond = np.zeros(lm.ldim, np.float32), np.zeros(lm.cond_dim, np.float32)
        noise = np.zeros(lm.ldim, np.float32)
        eos = lm.step(st, np.full(lm.ldim, np.nan, np.float32), noise, lat, cond)
        audio = mimi.decode(mimi.new_decoder_state(), lat[None])
        assert np.isfinite(eos) and np.isfinite(lat).all() and np.isfinite(audio).all()
        assert audio.shape == (mimi.frame_size,)


def test_stage_tensors_checks(small):
    """StageTensors hands each tensor over once, checks it against the table, names missing
    keys, and refuses to finish with a tensor left unbound."""
    from pocket_tts.checkpoint.layout import StageTensors

    cfg, weights = small
    with pytest.raises(ValueError, match="flow_lm.bos_emb"):
        StageTensors(
            cfg, "flow_lm", {k: v for k, v in weights.items() if k != "flow_lm.bos_emb"}, "float32"
        )
    t = StageTensors(cfg, "mimi", weights, "float32")
    assert t.key("dec.layers[].in_proj", 1) == (
        "mimi.decoder_transformer.transformer.layers.1.self_attn.in_proj.weight"
    )
    assert t.storage("enc.down.w") == "float32"
    assert StageTensors(cfg, "mimi", weights, "int8").storage("enc.down.w") == "float16"
    q = t.take("dec.quant")
    assert q is weights["mimi.quantizer.output_proj.weight"]
    with pytest.raises(RuntimeError, match="already taken"):
        t.take("dec.quant")
    m = t.take_matrix("enc.layers[].linear1", 0)
    assert m.storage == "float32" and m.scale is None and m.data.shape == (2048, 512)
    with pytest.raises(TypeError, match="take_matrix"):
        t.take("enc.layers[].linear2", 0)
    left = t.remaining()
    assert (
        "mimi.quantizer.output_proj.weight" not in left
        and len(left) == len([k for k in weights if k.startswith("mimi.")]) - 2
    )
    with pytest.raises(RuntimeError, match=f"{len(left)} tensors unused"):
        t.finish()
    bad = dict(weights)
    bad["mimi.encoder.model.0.conv.weight"] = weights["mimi.encoder.model.0.conv.weight"].astype(
        np.float64
    )
    with pytest.raises(ValueError, match=r"mimi.encoder.model.0.conv.weight: expected float32"):
        StageTensors(cfg, "mimi", bad, "float32").take("enc.seanet.first.w")
    # Float32 weights for a compact model: the error says how to load them.
    from pocket_tts.checkpoint.loader import pack_panels

    f32_panels = dict(weights)
    key = "flow_lm.transformer.layers.0.self_attn.in_proj.weight"
    f32_panels[key] = pack_panels(weights[key])
    lm = StageTensors(cfg, "flow_lm", f32_panels, "float16")
    with pytest.raises(ValueError, match=r"float16 panels.*dtype='float16'"):
        lm.take_matrix("layers[].in_proj", 0)
