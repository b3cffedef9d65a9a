"""Our safetensors reader/writer: round trips, exact dtype conversions, the official library's
byte layout, and a clean SafetensorsError for every kind of malformed file."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import run_reference

from pocket_tts.checkpoint.safetensors import (
    RawTensor,
    SafetensorsError,
    SafetensorsFile,
    bfloat16_bits_to_float32,
    float32_to_bfloat16_bits,
    read_header,
    read_safetensors,
    write_safetensors,
)

NUMPY_DTYPES = {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "I16": np.int16,
    "U16": np.uint16,
    "F16": np.float16,
    "I32": np.int32,
    "U32": np.uint32,
    "F32": np.float32,
    "F64": np.float64,
    "I64": np.int64,
    "U64": np.uint64,
}


def _sample(dtype, shape, rng):
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def _raw_file(path: Path, header: bytes | str | dict, data: bytes = b"", n: int | None = None):
    """Write a (possibly malformed) file: u64 length, header bytes, data."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    path.write_bytes(struct.pack("<Q", len(header) if n is None else n) + header + data)
    return path


def _both_fail(path: Path, match: str) -> None:
    with pytest.raises(SafetensorsError, match=match):
        read_header(path)
    with pytest.raises(SafetensorsError, match=match):
        read_safetensors(path)


# ---------------------------------------------------------------------------------- round trips


def test_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {}
    for st, dt in NUMPY_DTYPES.items():
        tensors[f"{st}.matrix"] = _sample(dt, (3, 5), rng)
        tensors[f"{st}.scalar"] = _sample(dt, (), rng)
        tensors[f"{st}.empty"] = np.zeros((0, 4), dtype=dt)
        tensors[f"{st}.cube"] = _sample(dt, (2, 3, 4), rng)
    bf16 = float32_to_bfloat16_bits(rng.standard_normal((4, 3)).astype(np.float32))
    tensors["BF16.matrix"] = RawTensor("BF16", bf16)
    path = tmp_path / "all.safetensors"
    write_safetensors(path, tensors, metadata={"format": "np", "ünï": "cödé"})

    header = read_header(path)
    assert header.metadata == {"format": "np", "ünï": "cödé"}
    assert header.data_start % 8 == 0
    out = read_safetensors(path)
    assert set(out) == set(tensors)
    for name, value in tensors.items():
        st = name.split(".")[0]
        assert header.tensors[name].dtype == st
        if st == "BF16":
            np.testing.assert_array_equal(out[name], bfloat16_bits_to_float32(bf16))
            assert out[name].dtype == np.float32
            continue
        assert out[name].dtype == value.dtype
        assert out[name].shape == value.shape
        np.testing.assert_array_equal(out[name], value)
        assert not out[name].flags.writeable
    raw = read_safetensors(path, raw_bf16=True)
    np.testing.assert_array_equal(raw["BF16.matrix"], bf16)


def test_writer_normalises_layout_and_byte_order(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    tensors = {
        "big_endian": x.astype(">f4"),
        "transposed": x.T,
        "strided": x[:, ::2],
        "big_int": np.arange(5, dtype=">i8"),
        "bf16_big": RawTensor("BF16", float32_to_bfloat16_bits(x).astype(">u2")),
        "bool_from_u8": RawTensor("BOOL", np.array([0, 1, 1], dtype=np.uint8)),
    }
    path = tmp_path / "norm.safetensors"
    write_safetensors(path, tensors)
    out = read_safetensors(path)
    np.testing.assert_array_equal(out["big_endian"], x)
    np.testing.assert_array_equal(out["transposed"], x.T)
    np.testing.assert_array_equal(out["strided"], x[:, ::2])
    np.testing.assert_array_equal(out["big_int"], np.arange(5))
    np.testing.assert_array_equal(out["bf16_big"], x)  # small integers are exact in bf16
    np.testing.assert_array_equal(out["bool_from_u8"], [False, True, True])
    assert read_header(path).tensors["big_endian"].dtype == "F32"


def test_header_layout_matches_official_conventions(tmp_path):
    path = tmp_path / "h.safetensors"
    write_safetensors(
        path,
        {
            "b": np.ones(3, np.float32),
            "a": np.ones(3, np.float32),
            "c": np.ones(1, np.int8),
            "d": np.ones(2, np.float64),
        },
        metadata={"k": "v"},
    )
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    text = blob[8 : 8 + n].decode()
    assert text == text.rstrip() + " " * (len(text) - len(text.rstrip()))
    header = json.loads(text)
    # __metadata__ first, then data order: widest dtype rank first, then by name.
    assert list(header) == ["__metadata__", "d", "a", "b", "c"]
    assert header["d"]["data_offsets"] == [0, 16]
    assert header["c"]["data_offsets"] == [40, 41]
    assert len(blob) == 8 + n + 41


def test_views_share_the_mapping_and_misaligned_data_is_copied(tmp_path):
    path = tmp_path / "v.safetensors"
    write_safetensors(path, {"w": np.arange(16, dtype=np.float32)})
    with SafetensorsFile(path) as f:
        w = f.get("w")
    assert not w.flags.owndata and not w.flags.writeable and w.flags.aligned
    np.testing.assert_array_equal(w, np.arange(16))  # still valid after close()

    # U8 first, F32 right after it: the F32 data sits at an odd address.
    values = np.array([1.5, -2.25, 3.0, 1e-30], dtype=np.float32)
    header = {
        "u": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
        "f": {"dtype": "F32", "shape": [4], "data_offsets": [1, 17]},
    }
    text = json.dumps(header)
    text += " " * (-len(text) % 8)
    _raw_file(tmp_path / "odd.safetensors", text, b"\x07" + values.tobytes())
    out = read_safetensors(tmp_path / "odd.safetensors")
    assert out["f"].flags.aligned and not out["f"].flags.writeable
    np.testing.assert_array_equal(out["f"], values)
    assert out["u"][0] == 7


def test_bool_bytes_are_normalised(tmp_path):
    header = {"b": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}}
    _raw_file(tmp_path / "b.safetensors", header, b"\x00\x02\x01")
    out = read_safetensors(tmp_path / "b.safetensors")["b"]
    assert out.dtype == np.bool_
    assert out.view(np.uint8).tolist() == [0, 1, 1]


def test_zero_sized_tensors_may_share_offsets(tmp_path):
    header = {
        "e1": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
        "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "e2": {"dtype": "I64", "shape": [2, 0], "data_offsets": [4, 4]},
    }
    _raw_file(tmp_path / "z.safetensors", header, np.float32(2).tobytes())
    out = read_safetensors(tmp_path / "z.safetensors")
    assert out["e1"].shape == (0,) and out["e2"].shape == (2, 0) and out["x"][0] == 2


def test_empty_file_with_only_a_header(tmp_path):
    path = tmp_path / "none.safetensors"
    write_safetensors(path, {})
    assert read_safetensors(path) == {}
    _raw_file(tmp_path / "meta.safetensors", {"__metadata__": {"a": "b"}})
    assert read_header(tmp_path / "meta.safetensors").metadata == {"a": "b"}


# ------------------------------------------------------------------------------ dtype exactness


def test_bf16_widening_is_exact_for_every_bit_pattern():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    wide = bfloat16_bits_to_float32(bits)
    assert wide.dtype == np.float32
    np.testing.assert_array_equal(wide.view(np.uint32), bits.astype(np.uint32) << 16)
    out = np.empty(bits.shape, np.float32)
    assert bfloat16_bits_to_float32(bits, out=out) is out
    np.testing.assert_array_equal(out.view(np.uint32), wide.view(np.uint32))
    # narrowing what was widened gives the same bits back (except NaNs, which become quiet)
    finite = ~np.isnan(wide)
    np.testing.assert_array_equal(float32_to_bfloat16_bits(wide)[finite], bits[finite])
    assert np.isnan(bfloat16_bits_to_float32(float32_to_bfloat16_bits(wide[~finite]))).all()


def test_bf16_rounding_is_nearest_even():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.standard_normal(20000).astype(np.float32) * 10.0 ** rng.integers(-40, 38, 20000),
            np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, 3.4e38, -3.4e38], np.float32),
        ]
    ).astype(np.float32)
    # ties: low halves exactly 0x8000, with even and odd upper halves
    ties = (np.arange(1000, dtype=np.uint32) << 16 | 0x8000) + 0x3F800000
    x = np.concatenate([x, ties.view(np.float32)])
    got = float32_to_bfloat16_bits(x)
    # reference: pick the nearer of the two neighbouring bf16 values, ties to the even one
    u = x.view(np.uint32).astype(np.uint64)
    lo = (u >> 16).astype(np.uint64)
    hi = lo + 1
    mask = np.uint64(0xFFFFFFFF)
    with np.errstate(invalid="ignore", over="ignore"):  # signalling-NaN patterns
        down = ((lo << 16) & mask).astype(np.uint32).view(np.float32).astype(np.float64)
        up = ((hi << 16) & mask).astype(np.uint32).view(np.float32).astype(np.float64)
        xf = x.astype(np.float64)
        d_down, d_up = np.abs(xf - down), np.abs(up - xf)
    want = np.where(d_down < d_up, lo, np.where(d_up < d_down, hi, np.where(lo % 2 == 0, lo, hi)))
    exact = (u & 0xFFFF) == 0
    want = np.where(exact, lo, want)
    finite = np.isfinite(x) & np.isfinite(up)
    np.testing.assert_array_equal(got[finite], want[finite].astype(np.uint16))
    assert float32_to_bfloat16_bits(np.array([np.nan], np.float32)).item() & 0x7FC0 == 0x7FC0
    np.testing.assert_array_equal(
        float32_to_bfloat16_bits(np.array([np.inf, -np.inf], np.float32)), [0x7F80, 0xFF80]
    )
    assert float32_to_bfloat16_bits(np.array([3.4e38], np.float32)).item() == 0x7F80


def test_f16_round_trip_every_bit_pattern(tmp_path):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    path = tmp_path / "f16.safetensors"
    write_safetensors(path, {"h": bits.view(np.float16)})
    h = read_safetensors(path)["h"]
    assert h.dtype == np.float16
    np.testing.assert_array_equal(h.view(np.uint16), bits)


# ------------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize("size", [0, 1, 7])
def test_file_too_short(tmp_path, size):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01" * size)
    _both_fail(path, "too short")


def test_header_length_zero(tmp_path):
    _both_fail(_raw_file(tmp_path / "a", b"", n=0), "length is 0")


@pytest.mark.parametrize("n", [100_000_001, 2**63, 2**64 - 1])
def test_header_length_absurd(tmp_path, n):
    _both_fail(_raw_file(tmp_path / "a", b"{}      ", n=n), "exceeds")


def test_header_length_past_eof(tmp_path):
    _both_fail(_raw_file(tmp_path / "a", b"{}      ", n=1000), "past the end of the file")


def test_header_not_utf8(tmp_path):
    _both_fail(_raw_file(tmp_path / "a", b'{"\xff\xfe": 1}  '), "UTF-8")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ('{"a": ', "not valid JSON"),
        ("{} trailing", "not valid JSON"),
        ("[1, 2]  ", "start with"),
        ("  {}    ", "start with"),
        ('{"a": NaN}', "NaN"),
        ('{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": 1}', "duplicate"),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON"),
    ],
)
def test_header_bad_json(tmp_path, header, match):
    _both_fail(_raw_file(tmp_path / "a", header), match)


def _entry(**kw):
    e = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    e.update(kw)
    return {k: v for k, v in e.items() if v is not None}


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ([1, 2], "not an object"),
        (_entry(dtype=None), "lacks 'dtype'"),
        (_entry(shape=None), "lacks 'shape'"),
        (_entry(data_offsets=None), "lacks 'data_offsets'"),
        (_entry(dtype=5), "dtype is not a string"),
        (_entry(dtype="F17"), "unknown dtype 'F17'"),
        (_entry(dtype="f32"), "unknown dtype"),
        (_entry(dtype="F8_E4M3", shape=[8]), "unsupported dtype 'F8_E4M3'"),
        (_entry(shape=[-2]), "non-negative integers"),
        (_entry(shape=[2.0]), "non-negative integers"),
        (_entry(shape=[True, 2]), "non-negative integers"),
        (_entry(shape="2"), "non-negative integers"),
        (_entry(data_offsets=[0]), "two non-negative integers"),
        (_entry(data_offsets=[0, 8, 9]), "two non-negative integers"),
        (_entry(data_offsets=[-1, 8]), "two non-negative integers"),
        (_entry(data_offsets=[0, "8"]), "two non-negative integers"),
        (_entry(data_offsets=[8, 0]), "decrease"),
        (_entry(data_offsets=[0, 16]), "past the end of the data buffer"),
        (_entry(data_offsets=[0, 2**70]), "past the end of the data buffer"),
        (_entry(shape=[3]), "needs 12 bytes"),
        (_entry(shape=[2, 2]), "needs 16 bytes"),
        (_entry(dtype="F64"), "needs 16 bytes"),
    ],
)
def test_bad_entries(tmp_path, entry, match):
    _both_fail(_raw_file(tmp_path / "a", {"t": entry}, b"\0" * 8), match)


def test_bad_metadata(tmp_path):
    for meta in ([1], {"a": 1}, {"a": None}, "text"):
        _both_fail(_raw_file(tmp_path / "a", {"__metadata__": meta}), "__metadata__")


def test_offsets_past_eof_after_truncation(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"a": np.ones(100, np.float32), "b": np.ones(10, np.float32)})
    blob = path.read_bytes()
    path.write_bytes(blob[:-1])
    _both_fail(path, "past the end of the data buffer")
    n = struct.unpack("<Q", blob[:8])[0]
    path.write_bytes(blob[: 8 + n - 3])
    _both_fail(path, "past the end of the file")


def test_overlapping_tensors(tmp_path):
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    _both_fail(_raw_file(tmp_path / "a", header, b"\0" * 12), "overlap")
    header["b"]["data_offsets"] = [0, 8]  # aliasing the same bytes
    _both_fail(_raw_file(tmp_path / "a", header, b"\0" * 8), "overlap")


def test_holes_and_trailing_bytes(tmp_path):
    header = {
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
    }
    _both_fail(_raw_file(tmp_path / "a", header, b"\0" * 12), r"bytes \[4, 8\).*belong to no")
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    _both_fail(_raw_file(tmp_path / "a", header, b"\0" * 8), r"bytes \[0, 4\)")
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    _both_fail(_raw_file(tmp_path / "a", header, b"\0" * 6), r"bytes \[4, 6\) at the end")
    _both_fail(_raw_file(tmp_path / "a", {}, b"\0"), r"bytes \[0, 1\) at the end")


def test_fuzzed_files_never_escape_safetensors_error(tmp_path):
    path = tmp_path / "ok.safetensors"
    write_safetensors(
        path,
        {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(3, dtype=np.int64)},
        metadata={"m": "x"},
    )
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    fuzz = tmp_path / "fuzz.safetensors"
    outcomes = {"ok": 0, "error": 0}
    for i in range(600):
        blob = bytearray(good)
        if i % 3 == 0:
            blob = blob[: rng.integers(0, len(blob))]
        else:
            for _ in range(rng.integers(1, 4)):
                pos = rng.integers(0, len(blob))
                blob[pos] = rng.integers(0, 256)
        fuzz.write_bytes(bytes(blob))
        try:
            out = read_safetensors(fuzz)
            for v in out.values():
                np.asarray(v).sum()  # touch every byte
            outcomes["ok"] += 1
        except SafetensorsError:
            outcomes["error"] += 1
    assert outcomes["error"] > 100


# ------------------------------------------------------------------------------------- writer


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ({"__metadata__": np.ones(1)}, "reserved"),
        ({1: np.ones(1)}, "must be strings"),
        ({"a": [1.0, 2.0]}, "numpy array"),
        ({"a": np.ones(2, np.complex64)}, "no safetensors equivalent"),
        ({"a": np.array(["x"])}, "no safetensors equivalent"),
        ({"a": np.ones(2, dtype="f4,f4")}, "no safetensors equivalent"),
        ({"a": RawTensor("BF16", np.ones(2, np.float32))}, "cannot be stored as BF16"),
        ({"a": RawTensor("Q4", np.ones(2, np.uint8))}, "unknown dtype"),
    ],
)
def test_writer_rejects(tmp_path, tensors, match):
    with pytest.raises(SafetensorsError, match=match):
        write_safetensors(tmp_path / "w.safetensors", tensors)
    assert not list(tmp_path.iterdir())  # no partial or temporary file left behind


def test_writer_rejects_bad_metadata(tmp_path):
    with pytest.raises(SafetensorsError, match="metadata"):
        write_safetensors(tmp_path / "w.safetensors", {}, metadata={"a": 1})


# ----------------------------------------------------------------- against the official library


def test_official_library_reads_our_files(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    tensors = {
        "f32": x,
        "f16": x.astype(np.float16),
        "bf16": RawTensor("BF16", float32_to_bfloat16_bits(x)),
        "f64": x.astype(np.float64),
        "i64": np.arange(-3, 4, dtype=np.int64),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "i8": np.array([-1, 2, -3], np.int8),
        "u8": np.array([1, 2, 250], np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.float32(1.5),
        "empty": np.zeros((0, 4), np.float32),
        "dir/name.with.dots": np.ones(2, np.float32),
    }
    path = tmp_path / "ours.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt", "note": "héllo"})
    ref = json.loads(run_reference("load_check.py", "read", str(path)))
    assert ref["metadata"] == {"format": "pt", "note": "héllo"}
    assert set(ref["tensors"]) == set(tensors)
    ours = read_safetensors(path)
    for name, info in ref["tensors"].items():
        assert info["shape"] == list(ours[name].shape), name
        assert info["sum"] == pytest.approx(float(np.sum(ours[name], dtype=np.float64)), abs=1e-9)
    assert ref["tensors"]["bf16"]["dtype"] == "bfloat16"
    assert ref["tensors"]["bool"]["dtype"] == "bool"


def test_official_files_read_and_rewritten_byte_identically(tmp_path):
    path = tmp_path / "official.safetensors"
    run_reference("load_check.py", "write", str(path))
    ref = json.loads(run_reference("load_check.py", "read", str(path)))
    header = read_header(path)
    raw = read_safetensors(path, raw_bf16=True)
    for name, info in ref["tensors"].items():
        value = raw[name] if name != "bf16" else bfloat16_bits_to_float32(raw[name])
        assert list(value.shape) == info["shape"]
        assert float(np.sum(value, dtype=np.float64)) == pytest.approx(info["sum"], abs=1e-9)
    again = {
        k: RawTensor(header.tensors[k].dtype, v) if header.tensors[k].dtype == "BF16" else v
        for k, v in raw.items()
    }
    write_safetensors(tmp_path / "again.safetensors", again, metadata=header.metadata)
    assert (tmp_path / "again.safetensors").read_bytes() == path.read_bytes()


# --------------------------------------------------------------------------- reads into buffers


def _two_tensor_file(tmp_path):
    rng = np.random.default_rng(9)
    tensors = {
        "a": rng.standard_normal((37, 11)).astype(np.float32),
        "b": rng.integers(0, 65535, (1000,), dtype=np.uint16),
        "c": np.arange(5, dtype=np.int8),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "t.safetensors"
    write_safetensors(path, tensors)
    return path, tensors


@pytest.mark.parametrize("piece", [1, 64, 1000, 4 << 20])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_read_tensors_into(tmp_path, monkeypatch, piece, threads):
    """Several tensors read into caller buffers in pieces on several threads come out exactly
    (pieces smaller than a tensor, than an element, larger than the file)."""
    import pocket_tts.checkpoint.safetensors as st

    monkeypatch.setattr(st, "READ_PIECE_BYTES", piece)
    path, tensors = _two_tensor_file(tmp_path)
    out = {k: np.full(v.shape, 7, v.dtype) for k, v in tensors.items()}
    with SafetensorsFile(path) as f:
        f.read_tensors_into(out, threads=threads)
        single = np.zeros_like(tensors["a"])
        f.read_into("a", single)
    for k, v in tensors.items():
        assert np.array_equal(out[k], v), k
    assert np.array_equal(single, tensors["a"])


def test_read_tensors_into_rejects_bad_buffers(tmp_path):
    path, tensors = _two_tensor_file(tmp_path)
    with SafetensorsFile(path) as f:
        with pytest.raises(ValueError, match="bytes"):
            f.read_tensors_into({"a": np.zeros((37, 10), np.float32)})
        with pytest.raises(ValueError, match="C-contiguous"):
            f.read_tensors_into({"a": np.zeros((11, 37), np.float32).T})
        frozen = np.zeros((37, 11), np.float32)
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            f.read_tensors_into({"a": frozen})
        with pytest.raises(KeyError):
            f.read_tensors_into({"nope": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="closed"):
        f.read_into("a", np.zeros((37, 11), np.float32))


def test_read_into_a_file_that_shrank(tmp_path, monkeypatch):
    """A file truncated after its header was validated reports the short read instead of
    returning half-filled buffers, on one thread or several."""
    import pocket_tts.checkpoint.safetensors as st

    monkeypatch.setattr(st, "READ_PIECE_BYTES", 64)
    path, tensors = _two_tensor_file(tmp_path)
    with SafetensorsFile(path) as f:
        os.truncate(path, f.header.data_start + 100)
        for threads in (1, 2):
            out = {k: np.zeros(v.shape, v.dtype) for k, v in tensors.items()}
            with pytest.raises(SafetensorsError, match="shrank"):
                f.read_tensors_into(out, threads=threads)


def test_reads_come_from_the_validated_file(tmp_path):
    """A file replaced at the same path (an atomic rename, as the cache writer does) after
    opening does not change what an open reader reads: it keeps the file it validated."""
    path, tensors = _two_tensor_file(tmp_path)
    other = tmp_path / "other.safetensors"
    write_safetensors(other, {k: np.zeros_like(v) + 1 for k, v in tensors.items()})
    with SafetensorsFile(path) as f:
        os.replace(other, path)
        out = np.zeros((37, 11), np.float32)
        f.read_into("a", out)
    assert np.array_equal(out, tensors["a"])
