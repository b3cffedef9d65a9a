"""Audio I/O: parity with the reference (read, resample, end_on_pause, prompt prep, WAV output),
validation of bad inputs, and streaming WAV to seekable files and to pipes."""

from __future__ import annotations

import io
import json
import os
import select
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import JFK_WAV, REF_WAV, REPO, run_reference

from pocket_tts.audio.prompt import end_on_pause, load_prompt_audio
from pocket_tts.audio.read import (
    MAX_SAMPLE_RATE,
    AudioError,
    AudioFileNotFoundError,
    read_audio,
    validate_sample_rate,
)
from pocket_tts.audio.resample import resample, torch_linspace
from pocket_tts.audio.wav import StreamingWAVWriter, float_to_pcm16, stream_audio_chunks, write_wav

# ----------------------------------------------------------------------------------------------
# Test files and the reference's outputs on them (one reference run per session)
# ----------------------------------------------------------------------------------------------


def _speechlike(sr: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Bursts of modulated tones separated by pauses, ending on 0.5 s of near-silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    env = (np.sin(2 * np.pi * 1.7 * t) > -0.2).astype(np.float64)
    env[t > seconds - 0.5] = 0.0
    out = []
    for c in range(channels):
        f0 = 140 + 40 * c
        sig = 0.3 * np.sin(2 * np.pi * f0 * t + 2 * np.sin(2 * np.pi * 3 * t))
        sig += 0.1 * np.sin(2 * np.pi * 3.1 * f0 * t)
        sig = sig * env + 1e-4 * rng.standard_normal(t.shape)
        out.append(sig)
    data = np.stack(out, axis=1)
    return data[:, 0] if channels == 1 else data


def _write_pcm16_stdlib(path: Path, data: np.ndarray, sr: int) -> None:
    frames = data if data.ndim == 2 else data[:, None]
    pcm = np.clip(np.round(frames * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory) -> dict[str, Path]:
    """Test files in many formats: real speech plus synthetic ones written by soundfile/wave."""
    d = tmp_path_factory.mktemp("audio_files")
    files = {"ref": REF_WAV, "jfk": JFK_WAV}
    sf.write(d / "synth44k.wav", _speechlike(44100, 3.0), 44100)  # PCM_16 via soundfile
    files["synth44k"] = d / "synth44k.wav"
    _write_pcm16_stdlib(d / "stereo48k.wav", _speechlike(48000, 2.5, channels=2, seed=1), 48000)
    files["stereo48k"] = d / "stereo48k.wav"
    sf.write(
        d / "float32.wav",
        _speechlike(22050, 2.0, seed=2).astype(np.float32),
        22050,
        subtype="FLOAT",
    )
    files["float32"] = d / "float32.wav"
    sf.write(d / "stereo.flac", _speechlike(32000, 2.0, channels=2, seed=3), 32000)
    files["flac"] = d / "stereo.flac"
    sf.write(d / "pcm24.wav", _speechlike(16000, 1.5, seed=4), 16000, subtype="PCM_24")
    files["pcm24"] = d / "pcm24.wav"
    sf.write(
        d / "six_ch.wav", _speechlike(24000, 1.0, channels=6, seed=5), 24000, format="WAVEX"
    )  # WAVE_FORMAT_EXTENSIBLE
    files["six_ch"] = d / "six_ch.wav"
    sf.write(d / "mono.mp3", _speechlike(24000, 2.0, seed=6), 24000, format="MP3")
    files["mp3"] = d / "mono.mp3"
    sf.write(d / "UPPER.WAV", _speechlike(8000, 1.0, seed=7), 8000)  # suffix is case-insensitive
    files["upper"] = d / "UPPER.WAV"
    _write_pcm16_stdlib(d / "long16k.wav", _speechlike(16000, 35.0, seed=8), 16000)
    files["long16k"] = d / "long16k.wav"
    return files


def _soundfile_shim(root: Path) -> Path:
    """A folder exposing this interpreter's soundfile, for a reference venv without one."""
    import _cffi_backend
    import _soundfile
    import _soundfile_data

    shim = root / "soundfile_shim"
    shim.mkdir(exist_ok=True)
    for mod in (sf, _soundfile, _cffi_backend):
        src = Path(mod.__file__)
        (shim / src.name).symlink_to(src)
    data_dir = Path(_soundfile_data.__file__).parent if _soundfile_data.__file__ else None
    if data_dir is None:  # namespace package
        data_dir = Path(list(_soundfile_data.__path__)[0])
    (shim / "_soundfile_data").symlink_to(data_dir)
    return shim


#: (source rate, target rate) pairs: the reference resamples them in the golden run, and
#: test_resample_parity compares ours to each.
RESAMPLE_CASES = [
    (16000, 24000),
    (44100, 24000),
    (48000, 24000),
    (22050, 24000),
    (8000, 24000),
    (24000, 16000),
    (11025, 24000),
    (96000, 24000),
]

EOP_CASES = {
    # id: (array builder, sample rate)
    "eop_trailing_silence": (
        lambda: np.concatenate([_speechlike(24000, 1.5), np.zeros(9000)]),
        24000,
    ),
    "eop_sr16k": (lambda: _speechlike(16000, 2.0, seed=11), 16000),
    "eop_sr44k": (lambda: _speechlike(44100, 1.0, seed=12), 44100),
    "eop_all_zero": (lambda: np.zeros(5000), 24000),
    "eop_constant": (lambda: np.full(4800, 0.25), 24000),
    "eop_short": (lambda: _speechlike(24000, 0.015, seed=13), 24000),
    "eop_one_frame": (lambda: _speechlike(24000, 0.02, seed=14), 24000),
    "eop_tiny_sr": (lambda: _speechlike(40, 5.0, seed=15), 40),
    "eop_quiet": (lambda: 1e-5 * _speechlike(24000, 1.0, seed=16), 24000),
    "eop_2d": (lambda: _speechlike(24000, 1.2, channels=2, seed=17).T.copy(), 24000),
    "eop_3d": (lambda: _speechlike(24000, 0.7, channels=2, seed=18).T.copy()[None], 24000),
}

PCM_EDGE = np.array(
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1.5,
        -1.5,
        0.99999,
        -0.99999,
        0.5,
        -0.5,
        1 / 32767,
        -1 / 32767,
        0.49999 / 32767,
        3.00001e-5,
        -3.00001e-5,
        0.12345678,
        np.inf,
        -np.inf,
        1e-30,
        32766.5 / 32767,
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="session")
def golden(audio_files, tmp_path_factory):
    """Run ``tools/reference/audio_golden.py`` once on every case; return (arrays, meta, inputs)."""
    d = tmp_path_factory.mktemp("audio_golden")
    items: list[dict] = []
    inputs: dict[str, np.ndarray] = {}

    def npy(name: str, arr: np.ndarray) -> str:
        inputs[name] = arr
        path = d / f"{name}.npy"
        np.save(path, arr)
        return str(path)

    for name, path in audio_files.items():
        items.append({"id": f"read_{name}", "op": "read", "path": str(path)})
        items.append({"id": f"readsf_{name}", "op": "read_soundfile", "path": str(path)})
        if name != "long16k":
            items.append({"id": f"prompt_{name}", "op": "prompt", "path": str(path)})
    items.append(
        {
            "id": "prompt_long16k_trunc",
            "op": "prompt",
            "truncate": True,
            "path": str(audio_files["long16k"]),
        }
    )
    items.append(
        {
            "id": "prompt_ref_trunc",
            "op": "prompt",
            "truncate": True,
            "path": str(audio_files["ref"]),
        }
    )

    rng = np.random.default_rng(42)
    for src, dst in RESAMPLE_CASES:
        x = (0.3 * rng.standard_normal(int(src * 0.7))).astype(np.float32)
        items.append(
            {
                "id": f"conv_{src}_{dst}",
                "op": "convert",
                "npy": npy(f"conv_{src}_{dst}", x),
                "from": src,
                "to": dst,
            }
        )

    for key, (build, sr) in EOP_CASES.items():
        items.append(
            {"id": key, "op": "end_on_pause", "npy": npy(key, build().astype(np.float32)), "sr": sr}
        )
    items.append(
        {
            "id": "eop_f64",
            "op": "end_on_pause",
            "sr": 24000,
            "npy": npy("eop_f64", _speechlike(24000, 1.0, seed=19)),
        }
    )

    ref_audio, _ = read_audio(REF_WAV)
    items.append(
        {"id": "prompt_arr_1t", "op": "prompt", "npy": npy("prompt_arr_1t", ref_audio[None])}
    )
    items.append({"id": "prompt_arr_t", "op": "prompt", "npy": npy("prompt_arr_t", ref_audio)})
    items.append(
        {
            "id": "prompt_arr_2t",
            "op": "prompt",
            "npy": npy("prompt_arr_2t", np.stack([ref_audio, ref_audio[::-1].copy()])),
        }
    )

    pcm_in = np.concatenate(
        [
            PCM_EDGE,
            rng.uniform(-1.2, 1.2, 20000).astype(np.float32),
            (np.arange(-32768, 32768, dtype=np.float32) / 32767),
        ]
    )
    items.append({"id": "pcm", "op": "pcm", "npy": npy("pcm", pcm_in)})

    chunks = {
        f"chunk{i}": rng.uniform(-1.1, 1.1, n).astype(np.float32)
        for i, n in enumerate([1920, 3840, 1, 0, 7680])
    }
    inputs["writer_chunks"] = chunks
    np.savez(d / "chunks.npz", **chunks)
    for seekable in (True, False):
        items.append(
            {
                "id": f"writer_{'seek' if seekable else 'pipe'}",
                "op": "writer",
                "npz": str(d / "chunks.npz"),
                "sr": 24000,
                "seekable": seekable,
            }
        )
    for steps in (1, 2, 3, 7, 320, 480, 481, 882, 960):
        items.append({"id": f"linspace_{steps}", "op": "linspace", "steps": steps})

    spec = d / "spec.json"
    spec.write_text(json.dumps({"items": items}))
    out = d / "golden.npz"
    meta = json.loads(
        run_reference(
            "audio_golden.py", str(spec), str(out), "--soundfile-shim", str(_soundfile_shim(d))
        )
    )
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, meta, inputs


def _assert_same(ours: np.ndarray, theirs: np.ndarray, atol: float = 0.0) -> float:
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs))) if ours.size else 0.0
    assert diff <= atol, diff
    return diff


# ----------------------------------------------------------------------------------------------
# Parity
# ----------------------------------------------------------------------------------------------

READ_NAMES = [
    "ref",
    "jfk",
    "synth44k",
    "stereo48k",
    "float32",
    "flac",
    "pcm24",
    "six_ch",
    "mp3",
    "upper",
    "long16k",
]
# Files the reference's audio_read itself cannot read (wave.Error: unknown format): float WAV and
# WAVE_FORMAT_EXTENSIBLE. We hand them to soundfile, i.e. match _audio_read_with_soundfile.
WAVE_MODULE_FAILS = {"float32", "six_ch"}


@pytest.mark.parametrize("name", READ_NAMES)
def test_read_audio_parity(golden, audio_files, name):
    arrays, meta, _ = golden
    assert meta["_soundfile"] in ("venv", "shim")
    ours, sr = read_audio(audio_files[name])
    key = f"read_{name}"
    if "error" in meta[key]:
        # wave.Error: unknown format (WAVE_FORMAT_EXTENSIBLE is readable from Python 3.12 on).
        assert name in WAVE_MODULE_FAILS, meta[key]
        assert meta[key]["error"][0] == "Error" and "unknown format" in meta[key]["error"][1]
        key = f"readsf_{name}"
    if name == "float32":
        assert key == f"readsf_{name}"
    assert "error" not in meta[key], meta[key]
    assert sr == meta[key]["sr"]
    _assert_same(ours, arrays[key])
    assert ours.ndim == 1 and ours.flags.c_contiguous


@pytest.mark.parametrize("name", ["ref", "jfk", "synth44k", "stereo48k", "upper"])
def test_16bit_wav_uses_wave_module_like_reference(golden, audio_files, name):
    # int16 / 32768 through the wave module equals soundfile's int->float scaling too.
    arrays, meta, _ = golden
    _assert_same(read_audio(audio_files[name])[0], arrays[f"readsf_{name}"])


@pytest.mark.parametrize("src,dst", RESAMPLE_CASES)
def test_resample_parity(golden, src, dst):
    arrays, meta, inputs = golden
    key = f"conv_{src}_{dst}"
    assert meta[key]["dtype"] == "torch.float32"
    ours = resample(inputs[key][None], src, dst)[0]
    _assert_same(ours, arrays[key], atol=1e-7)
    ours_1d = resample(inputs[key], src, dst)
    _assert_same(ours_1d, arrays[key], atol=1e-7)


@pytest.mark.parametrize("key", [*EOP_CASES, "eop_f64"])
def test_end_on_pause_parity(golden, key):
    arrays, meta, inputs = golden
    sr = EOP_CASES[key][1] if key in EOP_CASES else 24000
    ours = end_on_pause(inputs[key], sr)
    _assert_same(ours, arrays[key])


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 320, 480, 481, 882, 960])
def test_torch_linspace_bit_exact(golden, steps):
    arrays, _, _ = golden
    ours = torch_linspace(1, 0, steps)
    assert ours.tobytes() == arrays[f"linspace_{steps}"].tobytes()


@pytest.mark.parametrize("name", [n for n in READ_NAMES if n != "long16k"])
def test_load_prompt_audio_file_parity(golden, audio_files, name):
    arrays, meta, _ = golden
    key = f"prompt_{name}"
    ours = load_prompt_audio(str(audio_files[name]))
    if "error" in meta[key]:
        assert name in WAVE_MODULE_FAILS, meta[key]
        # The reference cannot read these at all; we compare to its pipeline on the data
        # soundfile returns (read -> resample -> end_on_pause).
        sf_audio = arrays[f"readsf_{name}"]
        sr = meta[f"readsf_{name}"]["sr"]
        expected = end_on_pause(resample(sf_audio[None], sr, 24000), 24000)[0]
        _assert_same(ours, expected)
        return
    assert meta[key]["shape"][:2] == [1, 1]
    _assert_same(ours, arrays[key][0, 0])
    # A Path source goes through the same pipeline.
    _assert_same(load_prompt_audio(Path(audio_files[name])), arrays[key][0, 0])


def test_load_prompt_audio_truncate_parity(golden, audio_files):
    arrays, meta, _ = golden
    ours = load_prompt_audio(audio_files["long16k"], truncate=True)
    _assert_same(ours, arrays["prompt_long16k_trunc"][0, 0])
    assert ours.shape[0] <= 30 * 24000 + 1920
    # A 10 s file is unaffected by truncation.
    _assert_same(load_prompt_audio(REF_WAV, truncate=True), arrays["prompt_ref_trunc"][0, 0])
    _assert_same(load_prompt_audio(REF_WAV, truncate=True), arrays["prompt_ref"][0, 0])


def test_load_prompt_audio_array_parity(golden):
    arrays, meta, inputs = golden
    expected = arrays["prompt_arr_1t"]
    assert meta["prompt_arr_1t"]["shape"][:2] == [1, 1]
    _assert_same(load_prompt_audio(inputs["prompt_arr_1t"]), expected[0, 0])
    # [T] is accepted too (the reference's encoder would reject the resulting [1, T]).
    assert meta["prompt_arr_t"]["shape"] == [1, expected.shape[-1]]
    _assert_same(load_prompt_audio(inputs["prompt_arr_t"]), expected[0, 0])
    # [2, T]: the reference hands [1, 2, T] to a 1-channel codec (which fails); we refuse.
    assert meta["prompt_arr_2t"]["shape"][:2] == [1, 2]
    with pytest.raises(AudioError, match="mono"):
        load_prompt_audio(inputs["prompt_arr_2t"])
    # Arrays are not truncated, as in the reference.
    _assert_same(load_prompt_audio(inputs["prompt_arr_1t"], truncate=True), expected[0, 0])


def test_pcm16_conversion_parity(golden):
    arrays, _, inputs = golden
    ours = float_to_pcm16(inputs["pcm"])
    assert ours.dtype == np.int16
    np.testing.assert_array_equal(ours, arrays["pcm"])


def _riff_sizes(data: bytes) -> tuple[int, int]:
    return struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 40)[0]


def test_wav_writer_seekable_bytes_identical_to_reference(golden):
    arrays, _, inputs = golden
    chunks = inputs["writer_chunks"]
    buf = io.BytesIO()
    writer = StreamingWAVWriter(buf, 24000)
    for i in range(len(chunks)):
        writer.write(chunks[f"chunk{i}"])
    writer.finalize()
    assert buf.getvalue() == arrays["writer_seek"].tobytes()


def test_wav_writer_unseekable_matches_reference_payload(golden):
    arrays, _, inputs = golden
    chunks = inputs["writer_chunks"]
    sink = _Unseekable()
    writer = StreamingWAVWriter(sink, 24000)
    for i in range(len(chunks)):
        writer.write(chunks[f"chunk{i}"])
    writer.finalize()
    ours, theirs = bytes(sink.buf), arrays["writer_pipe"].tobytes()
    assert len(ours) == len(theirs)
    # Same fmt chunk and samples; only the "unknown" sizes differ (reference: 1e9 frames).
    assert ours[44:] == theirs[44:]
    assert ours[8:40] == theirs[8:40]
    assert _riff_sizes(ours) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert _riff_sizes(theirs) == (36 + 2_000_000_000, 2_000_000_000)


def _spec_header(sample_rate: int, riff_size: int, data_size: int) -> bytes:
    """The canonical 44-byte PCM WAV header, field by field from the RIFF/WAVE spec."""
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", riff_size),  # bytes after this field: 36 + data size
            b"WAVE",
            b"fmt ",
            struct.pack("<I", 16),  # fmt chunk size for PCM
            struct.pack("<H", 1),  # WAVE_FORMAT_PCM
            struct.pack("<H", 1),  # channels
            struct.pack("<I", sample_rate),
            struct.pack("<I", sample_rate * 2),  # byte rate: rate * channels * 2 bytes
            struct.pack("<H", 2),  # block align: channels * 2 bytes
            struct.pack("<H", 16),  # bits per sample
            b"data",
            struct.pack("<I", data_size),
        ]
    )


@pytest.mark.parametrize("sample_rate", [24000, 16000, 44100])
def test_wav_header_seekable_matches_spec_and_reads_back(sample_rate):
    audio = np.sin(np.arange(1000) / 7.0).astype(np.float32) * 0.8
    buf = io.BytesIO()
    with StreamingWAVWriter(buf, sample_rate, trailing_silence=0.01) as w:
        w.write(audio[:300])
        w.write(audio[300:])
    data = buf.getvalue()
    frames = 1000 + int(sample_rate * 0.01)
    assert data[:44] == _spec_header(sample_rate, 36 + 2 * frames, 2 * frames)
    assert len(data) == 44 + 2 * frames
    with wave.open(io.BytesIO(data)) as r:  # the stdlib reader
        assert r.getparams()[:4] == (1, 2, sample_rate, frames)
        pcm = np.frombuffer(r.readframes(-1), "<i2")
    np.testing.assert_array_equal(pcm[:1000], float_to_pcm16(audio))
    info = sf.info(io.BytesIO(data))  # libsndfile
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        sample_rate,
        1,
        frames,
        "PCM_16",
    )


def test_wav_header_unseekable_is_unknown_length_and_decodes():
    sink = _Unseekable()
    audio = np.linspace(-1, 1, 2400, dtype=np.float32)
    with StreamingWAVWriter(sink, 24000) as w:
        w.write(audio)
    data = bytes(sink.buf)
    assert data[:44] == _spec_header(24000, 0xFFFFFFFF, 0xFFFFFFFF)
    assert len(data) == 44 + 2 * (2400 + 4800)
    decoded, sr = sf.read(io.BytesIO(data), dtype="int16")  # read until the end of the stream
    assert sr == 24000 and len(decoded) == 2400 + 4800
    np.testing.assert_array_equal(decoded[:2400], float_to_pcm16(audio))


# ----------------------------------------------------------------------------------------------
# Writer behaviour
# ----------------------------------------------------------------------------------------------


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:  # type: ignore[override]
        self.buf += bytes(b)
        return len(b)


def test_write_wav_roundtrip(tmp_path):
    audio = np.sin(np.linspace(0, 100, 12345)).astype(np.float32) * 0.5
    path = tmp_path / "out.wav"
    write_wav(path, audio, 24000)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.getnframes() == 12345 + 4800
        pcm = np.frombuffer(w.readframes(-1), "<i2")
    np.testing.assert_array_equal(pcm[:12345], float_to_pcm16(audio))
    assert not pcm[12345:].any()
    data, sr = sf.read(path, dtype="int16")
    assert sr == 24000 and len(data) == 12345 + 4800
    write_wav(tmp_path / "bare.wav", audio, 16000, trailing_silence=0)
    assert sf.info(str(tmp_path / "bare.wav")).frames == 12345


def test_writer_header_patched_at_offset_and_context_manager():
    buf = io.BytesIO()
    buf.write(b"prefix")
    with StreamingWAVWriter(buf, 8000, trailing_silence=0.5) as w:
        w.write(np.zeros(100, np.float32))
        w.write(np.ones((2, 50), np.float64))  # any shape, float64 ok
    data = buf.getvalue()
    assert data[:6] == b"prefix"
    riff, size = _riff_sizes(data[6:])
    assert size == 2 * (100 + 100 + 4000) and riff == size + 36
    assert len(data) == 6 + 44 + size
    assert not buf.closed


def test_writer_header_written_before_first_chunk_and_path_closed(tmp_path):
    path = tmp_path / "s.wav"
    w = StreamingWAVWriter(path, 24000)
    assert path.read_bytes()[:4] == b"RIFF" and len(path.read_bytes()) == 44
    assert _riff_sizes(path.read_bytes()) == (0xFFFFFFFF, 0xFFFFFFFF)  # playable while growing
    w.write(np.full(10, 0.5, np.float32))
    w.finalize()
    w.finalize()  # idempotent
    assert w._file.closed
    with pytest.raises(ValueError, match="finalized"):
        w.write(np.zeros(3, np.float32))
    assert _riff_sizes(path.read_bytes()) == (36 + 2 * 4810, 2 * 4810)


def test_writer_append_mode_is_not_patched(tmp_path):
    path = tmp_path / "append.wav"
    path.write_bytes(b"old")
    with open(path, "ab") as f:
        w = StreamingWAVWriter(f, 24000, trailing_silence=0)
        assert not w.is_seekable
        w.write(np.zeros(10, np.float32))
        w.finalize()
    data = path.read_bytes()
    assert data[:3] == b"old" and len(data) == 3 + 44 + 20
    assert _riff_sizes(data[3:]) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_writer_first_chunk_buffering():
    sink = _Unseekable()
    w = StreamingWAVWriter(sink, 1000, first_chunk_seconds=0.1)  # 100 samples
    w.write(np.zeros(60, np.float32))
    assert len(sink.buf) == 44
    w.write(np.zeros(60, np.float32))
    assert len(sink.buf) == 44 + 240
    w.write(np.zeros(5, np.float32))
    assert len(sink.buf) == 44 + 250
    w.close()  # close without finalize: no silence
    assert len(sink.buf) == 44 + 250


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(AudioError, match="sample rate"):
        StreamingWAVWriter(io.BytesIO(), 0)
    with pytest.raises(TypeError):
        StreamingWAVWriter(12, 24000)  # type: ignore[arg-type]
    w = StreamingWAVWriter(io.BytesIO(), 24000)
    with pytest.raises(AudioError, match="dtype"):
        w.write(np.zeros(4, np.int32))
    w.write(np.array([1, -2], np.int16))  # int16 is raw PCM
    np.testing.assert_array_equal(float_to_pcm16(np.array([np.nan], np.float32)), [0])


def _read_available(fd: int, n: int, timeout: float = 10.0) -> bytes:
    out = b""
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"only {len(out)} of {n} bytes arrived"
        out += os.read(fd, n - len(out))
    return out


def test_writer_streams_to_pipe_before_finalize():
    r, wfd = os.pipe()
    try:
        with os.fdopen(wfd, "wb") as pipe:
            w = StreamingWAVWriter(pipe, 24000)
            assert not w.is_seekable
            header = _read_available(r, 44)
            assert _riff_sizes(header) == (0xFFFFFFFF, 0xFFFFFFFF)
            chunk = np.full(1920, 0.25, np.float32)
            w.write(chunk)
            # The first chunk flows at once, before finalize.
            assert _read_available(r, 3840) == float_to_pcm16(chunk).tobytes()
            w.finalize()
        rest = b""
        while True:
            part = os.read(r, 65536)
            if not part:
                break
            rest += part
        assert rest == bytes(4800 * 2)
    finally:
        os.close(r)


def test_stream_audio_chunks_to_stdout_decodes():
    code = (
        "import numpy as np\n"
        "from pocket_tts.audio.wav import stream_audio_chunks\n"
        "chunks = (np.full(2400, 0.1 * (i + 1), np.float32) for i in range(10))\n"
        "stream_audio_chunks('-', chunks, 24000)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=120, check=True
    )
    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="int16")
    assert sr == 24000
    assert len(data) == 24000 + 4800
    assert data[0] == int(np.float32(0.1) * np.float32(32767))
    stream_audio_chunks(None, iter([np.zeros(3)]), 24000)  # consumed, nothing written


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="not found"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError):
        load_prompt_audio(str(tmp_path / "nope.flac"))
    with pytest.raises(AudioFileNotFoundError, match="Did you mean the predefined voice 'alba'"):
        load_prompt_audio("albba")
    with pytest.raises(AudioError, match="not a file"):
        read_audio(tmp_path)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioError, match="cannot read"):
        read_audio(corrupt)
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all " * 20)
    with pytest.raises(AudioError, match="cannot read"):
        load_prompt_audio(text)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    with pytest.raises(AudioError):
        read_audio(empty)
    with pytest.raises(AudioError, match="safetensors"):
        load_prompt_audio(str(tmp_path / "voice.safetensors"))
    with pytest.raises(TypeError):
        read_audio(123)  # type: ignore[arg-type]


def test_truncated_wav_is_tolerated(tmp_path):
    path = tmp_path / "trunc.wav"
    _write_pcm16_stdlib(path, _speechlike(16000, 0.5, channels=2), 16000)
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])  # cut inside the last stereo frame
    audio, sr = read_audio(path)
    assert sr == 16000 and audio.shape == (8000 - 1,)


def test_zero_length_and_silent_audio(tmp_path):
    empty = tmp_path / "empty.wav"
    _write_pcm16_stdlib(empty, np.zeros(0), 24000)
    audio, sr = read_audio(empty)  # reading is fine...
    assert audio.shape == (0,) and sr == 24000
    with pytest.raises(AudioError, match="empty"):  # ...as a prompt it is not
        load_prompt_audio(empty)
    silent = tmp_path / "silent.wav"
    _write_pcm16_stdlib(silent, np.zeros(24000), 24000)
    with pytest.raises(AudioError, match="silent"):
        load_prompt_audio(silent)
    with pytest.raises(AudioError, match="silent"):
        load_prompt_audio(np.zeros((1, 4800), np.float32))
    with pytest.raises(AudioError, match="empty"):
        load_prompt_audio(np.zeros(0, np.float32))
    # Very quiet but non-zero audio is processed (end_on_pause is relative to the loudest frame).
    quiet = load_prompt_audio(1e-4 * _speechlike(24000, 1.0).astype(np.float32))
    assert quiet.dtype == np.float32 and np.any(quiet)


def test_non_finite_audio(tmp_path):
    x = _speechlike(24000, 0.5).astype(np.float32)
    x[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_prompt_audio(x)
    path = tmp_path / "nan.wav"
    sf.write(path, x, 24000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_prompt_audio(path)
    x[100] = np.inf
    with pytest.raises(AudioError, match="infinite"):
        load_prompt_audio(x[None])


def test_bad_sample_rates(tmp_path):
    for bad in (0, -8000, MAX_SAMPLE_RATE + 1, 16000.5, float("nan"), True, "24000", None):
        with pytest.raises(AudioError, match="sample rate"):
            validate_sample_rate(bad)
    assert validate_sample_rate(24000.0) == 24000
    with pytest.raises(AudioError, match="sample rate"):
        resample(np.zeros(10, np.float32), 0, 24000)
    with pytest.raises(AudioError, match="sample rate"):
        load_prompt_audio(np.ones(100, np.float32), sample_rate=10**9)
    # A WAV file whose header claims an absurd rate.
    path = tmp_path / "absurd.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(3_000_000)
        w.writeframes(np.ones(100, "<i2").tobytes())
    with pytest.raises(AudioError, match="unsupported sample rate 3000000"):
        read_audio(path)


def test_bad_array_shapes_and_dtypes():
    good = _speechlike(24000, 0.3).astype(np.float32)
    with pytest.raises(AudioError, match="integer dtype"):
        load_prompt_audio((good * 32767).astype(np.int16))
    with pytest.raises(AudioError, match="dtype"):
        load_prompt_audio(good > 0)
    with pytest.raises(AudioError, match="dtype"):
        load_prompt_audio(good.astype(np.complex64))
    with pytest.raises(AudioError, match="shape"):
        load_prompt_audio(good[None, None])
    with pytest.raises(AudioError, match="shape"):
        load_prompt_audio(np.float32(0.5))
    with pytest.raises(AudioError, match="dtype"):
        end_on_pause(np.ones(1000, np.int16), 24000)
    with pytest.raises(AudioError, match="scalar"):
        end_on_pause(np.float32(1.0), 24000)
    with pytest.raises(AudioError, match="floating"):
        resample(np.ones(100, np.int16), 16000, 24000)
    # float64 and lists are accepted and produce float32, like a float32 input.
    ours = load_prompt_audio(good.astype(np.float64))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, load_prompt_audio(good))
    np.testing.assert_array_equal(load_prompt_audio(good.tolist()), ours)
    with pytest.raises(TypeError):
        load_prompt_audio(str(REF_WAV), sample_rate=24000)


def test_array_with_sample_rate_is_resampled():
    x16, sr = read_audio(JFK_WAV)
    ours = load_prompt_audio(x16, sample_rate=sr)
    np.testing.assert_array_equal(ours, load_prompt_audio(JFK_WAV))


def test_end_on_pause_does_not_modify_input_and_resample_identity():
    x = _speechlike(24000, 1.0).astype(np.float32)
    before = x.copy()
    y = end_on_pause(x, 24000)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(x, y)
    assert resample(x, 24000, 24000) is x
    short = x[:100]
    assert end_on_pause(short, 24000) is short  # shorter than a frame: unchanged


def test_load_prompt_audio_threadsafe():
    results: list[np.ndarray] = []

    def run() -> None:
        results.append(load_prompt_audio(JFK_WAV))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_header_claiming_billions_of_frames_allocates_only_what_is_there(tmp_path):
    """Fuzz finding (tools/fuzz/corpus/audio/finding-flac-header-claims-8g-frames): a 415-byte
    FLAC whose header claims 8.6e9 frames made soundfile allocate 32 GiB up front. Reading
    goes by blocks, so memory follows the data actually decoded."""
    import tracemalloc

    data = (REPO / "tools/fuzz/corpus/audio/finding-flac-header-claims-8g-frames").read_bytes()
    path = tmp_path / "huge.flac"
    path.write_bytes(data[1:])  # the fuzz target's first byte picks the container
    tracemalloc.start()
    try:
        for truncate in (True, False):
            try:
                wav = load_prompt_audio(str(path), truncate=truncate)
            except AudioError:
                continue
            assert wav.ndim == 1 and len(wav) < 24000 * 31
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak
    # A truncated read of a long file decodes only the first 30 s.
    long = tmp_path / "long.flac"
    sf.write(long, np.random.default_rng(0).uniform(-0.1, 0.1, 16000 * 70), 16000)
    whole, _ = sf.read(long, dtype="float32")
    np.testing.assert_array_equal(
        load_prompt_audio(str(long), truncate=True),
        end_on_pause(resample(whole[None, : 30 * 16000], 16000, 24000)[0], 24000),
    )
