"""A self-contained reader and writer for the safetensors format (no ``safetensors`` package).

Why not the official package: its numpy API cannot return BF16 tensors (numpy has no bfloat16;
the checkpoints may be BF16 and this package has no torch), it reads into buffers of its own
(the loader reads each tensor straight into a 64-byte-aligned buffer of the caller's, with
``pread``, in parallel pieces for the packed-weights cache), and it is one more compiled
dependency for ~500 lines of Python. This reader also validates the whole header against the
spec before handing out anything, so a malformed or hostile file raises
:class:`SafetensorsError` instead of reading out of bounds.

File layout (https://github.com/huggingface/safetensors, "Format"):

* 8 bytes: ``N``, an unsigned little-endian 64-bit integer, the size of the header;
* ``N`` bytes: a UTF-8 JSON object ``{name: {"dtype", "shape", "data_offsets": [begin, end]}}``,
  optionally with a ``"__metadata__"`` entry mapping strings to strings, padded with spaces;
* the data buffer: every tensor's little-endian, C-order bytes at ``[begin, end)`` relative to
  the start of the buffer. The spec requires the buffer to be entirely indexed, without holes
  or overlaps, which the official implementation enforces; so does this reader.

The reader memory-maps the file (the header, and the views :meth:`SafetensorsFile.get_raw`
returns) and keeps it open, so that every read comes from the file whose header it validated.
Arrays are read-only views into the mapping (copies only when a tensor is misaligned for its
dtype, or for ``BOOL``/``BF16`` conversions). The mapping stays alive as long as any view does.
A file truncated by another process *while* mapped can still fault (SIGBUS) on a view; nothing
in user space prevents that (reads into buffers report it as an error instead).

The writer produces the same bytes as the official library: data ordered by dtype (widest
first) then name, header entries in data order after ``__metadata__``, compact JSON, spaces
padding the header to a multiple of 8 bytes.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "DTYPES",
    "READ_PIECE_BYTES",
    "Header",
    "RawTensor",
    "SafetensorsError",
    "SafetensorsFile",
    "TensorInfo",
    "bfloat16_bits_to_float32",
    "float32_to_bfloat16_bits",
    "read_header",
    "read_safetensors",
    "write_safetensors",
]

#: Largest header accepted, as in the official implementation (100 MB).
MAX_HEADER_SIZE = 100_000_000

#: safetensors dtype name -> numpy storage dtype (little-endian). BF16 is stored as raw uint16
#: bits (numpy has no bfloat16); BOOL is one byte per element.
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}

# Dtypes the format defines but this reader cannot represent in numpy.
_UNSUPPORTED_DTYPES = frozenset(
    {"F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"}
)

# Order of the official ``Dtype`` enum (the writer sorts the data by it, widest-last enum first).
_DTYPE_RANK = {
    name: i
    for i, name in enumerate(
        ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
    )
}

# numpy dtype (native or little-endian form) -> safetensors dtype name, for the writer.
_NP_TO_ST: dict[np.dtype, str] = {
    np.dtype(np.bool_): "BOOL",
    np.dtype("u1"): "U8",
    np.dtype("i1"): "I8",
    np.dtype("<i2"): "I16",
    np.dtype("<u2"): "U16",
    np.dtype("<f2"): "F16",
    np.dtype("<i4"): "I32",
    np.dtype("<u4"): "U32",
    np.dtype("<f4"): "F32",
    np.dtype("<f8"): "F64",
    np.dtype("<i8"): "I64",
    np.dtype("<u8"): "U64",
}


class SafetensorsError(ValueError):
    """A safetensors file (or a tensor handed to the writer) is malformed or unsupported."""


@dataclass(frozen=True)
class TensorInfo:
    """One header entry. ``begin``/``end`` are byte offsets relative to the data buffer."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.begin

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    """A validated safetensors header."""

    tensors: dict[str, TensorInfo]  # in the order of the JSON header
    metadata: dict[str, str] | None
    data_start: int  # absolute file offset of the data buffer (8 + header length)
    file_size: int


@dataclass(frozen=True)
class RawTensor:
    """A tensor to write with an explicit safetensors dtype, e.g. ``RawTensor("BF16", bits)``.

    ``data`` is reinterpreted byte for byte; its itemsize must equal the dtype's (so BF16 takes
    uint16 bit patterns, as produced by :func:`float32_to_bfloat16_bits`).
    """

    dtype: str
    data: np.ndarray


# --------------------------------------------------------------------------------------------
# bfloat16 helpers


def bfloat16_bits_to_float32(bits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 exactly (``bits << 16``).

    If ``out`` (float32, same shape) is given, it is filled in place without temporaries.
    """
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError(f"expected uint16 bfloat16 bits, got {bits.dtype}")
    if out is None:
        out = np.empty(bits.shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != bits.shape:
        raise ValueError("out must be float32 with the shape of bits")
    np.left_shift(bits, np.uint32(16), out=out.view(np.uint32), dtype=np.uint32)
    return out


def float32_to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest, ties to even); return uint16 bits.

    NaNs stay NaN (quiet), infinities stay infinite, as in PyTorch's conversion.
    """
    u = np.asarray(x, dtype=np.float32, order="C").view(np.uint32)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    quiet = (u >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet, rounded).astype(np.uint16)


# --------------------------------------------------------------------------------------------
# header parsing


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise SafetensorsError(f"duplicate key {key!r} in header")
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise SafetensorsError(f"invalid JSON constant {name} in header")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_header(raw: bytes, data_start: int, file_size: int, where: str) -> Header:
    """Validate the JSON header bytes against a file of ``file_size`` bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError(f"{where}: header is not valid UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise SafetensorsError(f"{where}: header does not start with '{{'")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except SafetensorsError as e:
        raise SafetensorsError(f"{where}: {e}") from None
    except (ValueError, RecursionError) as e:
        raise SafetensorsError(f"{where}: header is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise SafetensorsError(f"{where}: header is not a JSON object")

    metadata = obj.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise SafetensorsError(f"{where}: __metadata__ must map strings to strings")

    data_len = file_size - data_start
    tensors: dict[str, TensorInfo] = {}
    for name, entry in obj.items():
        if not isinstance(entry, dict):
            raise SafetensorsError(f"{where}: entry {name!r} is not an object")
        for field in ("dtype", "shape", "data_offsets"):
            if field not in entry:
                raise SafetensorsError(f"{where}: entry {name!r} lacks {field!r}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str):
            raise SafetensorsError(f"{where}: tensor {name!r}: dtype is not a string")
        if dtype not in DTYPES:
            kind = "unsupported" if dtype in _UNSUPPORTED_DTYPES else "unknown"
            raise SafetensorsError(f"{where}: tensor {name!r}: {kind} dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(
                f"{where}: tensor {name!r}: shape must be a list of non-negative integers, "
                f"got {shape!r}"
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) and o >= 0 for o in offsets)
        ):
            raise SafetensorsError(
                f"{where}: tensor {name!r}: data_offsets must be two non-negative integers, "
                f"got {offsets!r}"
            )
        begin, end = offsets
        if begin > end:
            raise SafetensorsError(f"{where}: tensor {name!r}: data_offsets {offsets} decrease")
        if end > data_len:
            raise SafetensorsError(
                f"{where}: tensor {name!r}: data_offsets {offsets} run past the end of the "
                f"data buffer ({data_len} bytes)"
            )
        expected = math.prod(shape) * DTYPES[dtype].itemsize
        if end - begin != expected:
            raise SafetensorsError(
                f"{where}: tensor {name!r}: {dtype} shape {shape} needs {expected} bytes but "
                f"data_offsets {offsets} span {end - begin}"
            )
        tensors[name] = TensorInfo(name, dtype, tuple(shape), begin, end)

    # The buffer must be covered exactly: no overlaps, no holes, nothing after the last tensor.
    position = 0
    previous = None
    for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if info.begin < position:
            raise SafetensorsError(
                f"{where}: tensors {previous!r} and {info.name!r} overlap "
                f"(byte {info.begin} < {position})"
            )
        if info.begin > position:
            raise SafetensorsError(
                f"{where}: bytes [{position}, {info.begin}) of the data buffer belong to no "
                f"tensor (before {info.name!r})"
            )
        position = info.end
        previous = info.name
    if position != data_len:
        raise SafetensorsError(
            f"{where}: bytes [{position}, {data_len}) at the end of the data buffer belong to "
            "no tensor"
        )
    return Header(tensors=tensors, metadata=metadata, data_start=data_start, file_size=file_size)


#: Magic numbers of files people give where a safetensors file belongs, and what to say.
_FOREIGN_FORMATS = (
    (b"RIFF", "a WAV audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"\xff\xfb", "an MP3 audio file"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt / .pth checkpoint?)"),
    (b"\x80\x02", "a Python pickle (a PyTorch checkpoint?)"),
    (b"\x80\x04", "a Python pickle (a PyTorch checkpoint?)"),
    (b"GGUF", "a GGUF model file"),
    (b"\x89HDF", "an HDF5 file"),
)
_AUDIO_HINT = "; an audio prompt goes to get_state_for_audio_prompt as a .wav / .flac / .ogg file"


def _foreign_format(prefix: bytes, where: str) -> None:
    """Raise SafetensorsError naming the file's real type, if its first bytes tell it."""
    for magic, kind in _FOREIGN_FORMATS:
        if prefix.startswith(magic):
            hint = _AUDIO_HINT if "audio" in kind else ""
            raise SafetensorsError(f"{where}: this is {kind}, not a safetensors file{hint}")


def _header_length(prefix: bytes, file_size: int, where: str) -> int:
    if file_size < 8:
        _foreign_format(prefix, where)
        raise SafetensorsError(f"{where}: file too short ({file_size} bytes) for a header length")
    (n,) = struct.unpack("<Q", prefix)
    if n == 0 or n > MAX_HEADER_SIZE or 8 + n > file_size:  # not safetensors: say what it is
        _foreign_format(prefix, where)
    if n == 0:
        raise SafetensorsError(f"{where}: header length is 0")
    if n > MAX_HEADER_SIZE:
        raise SafetensorsError(f"{where}: header length {n} exceeds {MAX_HEADER_SIZE} bytes")
    if 8 + n > file_size:
        raise SafetensorsError(
            f"{where}: header length {n} runs past the end of the file ({file_size} bytes)"
        )
    return n


def read_header(path: str | os.PathLike) -> Header:
    """Read and fully validate the header of the safetensors file at ``path``.

    Only the header bytes are read. Raises :class:`SafetensorsError` on any malformation.
    """
    where = str(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        n = _header_length(prefix, size, where)
        raw = f.read(n)
        if len(raw) != n:
            raise SafetensorsError(f"{where}: file shrank while reading the header")
    return _parse_header(raw, 8 + n, size, where)


# --------------------------------------------------------------------------------------------
# reading

#: Bytes per ``pread`` of :meth:`SafetensorsFile.read_tensors_into` (each read also faults in
#: its fresh pages; pieces this size keep both threads busy to the end).
READ_PIECE_BYTES = 4 << 20


def _read_pieces(fd: int, pieces: list[tuple[memoryview, int]], threads: int, where: str) -> None:
    """Fill every (buffer, file offset) piece from ``fd``, on ``threads`` threads."""
    todo = deque(pieces)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not errors:
                try:
                    view, offset = todo.popleft()
                except IndexError:
                    return
                done = 0
                while done < len(view):
                    got = os.preadv(fd, [view[done:]], offset + done)
                    if got <= 0:
                        raise SafetensorsError(f"{where}: file shrank while reading")
                    done += got
        except (OSError, SafetensorsError) as exc:
            errors.append(exc)

    helpers = [
        threading.Thread(target=work, name="pocket-tts-read", daemon=True)
        for _ in range(min(threads, len(pieces)) - 1)
    ]
    for t in helpers:
        t.start()
    work()
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]


class SafetensorsFile:
    """A memory-mapped, validated safetensors file.

    Usable as a context manager; :meth:`close` only drops this object's reference to the
    mapping, so arrays already handed out stay valid.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        """Open and map ``path``, validating the whole header first."""
        self.path = Path(path)
        where = str(path)
        self._file: BinaryIO | None = open(path, "rb")  # closed by close()
        self._fd: int | None = self._file.fileno()
        try:
            size = os.fstat(self._fd).st_size
            if size < 8:
                raise SafetensorsError(
                    f"{where}: file too short ({size} bytes) for a header length"
                )
            self._mm: mmap.mmap | None = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            size = len(self._mm)
            n = _header_length(self._mm[:8], size, where)
            self.header = _parse_header(self._mm[8 : 8 + n], 8 + n, size, where)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and drop the mapping; it is unmapped once no returned view refers to
        it any more."""
        self._mm = None
        self._fd = None
        file, self._file = getattr(self, "_file", None), None
        if file is not None:
            file.close()

    @property
    def metadata(self) -> dict[str, str] | None:
        """The ``__metadata__`` entry, if any."""
        return self.header.metadata

    def keys(self) -> list[str]:
        """Tensor names in header order."""
        return list(self.header.tensors)

    def __iter__(self) -> Iterator[str]:
        return iter(self.header.tensors)

    def __contains__(self, name: object) -> bool:
        return name in self.header.tensors

    def __len__(self) -> int:
        return len(self.header.tensors)

    def info(self, name: str) -> TensorInfo:
        """The header entry of tensor ``name`` (KeyError if absent)."""
        return self.header.tensors[name]

    def get_raw(self, name: str) -> np.ndarray:
        """Tensor ``name`` in its storage dtype (BF16 as uint16 bits), read-only.

        A view into the mapping when the data is aligned for its dtype, else an aligned copy.
        """
        if self._mm is None:
            raise ValueError(f"{self.path}: file is closed")
        info = self.header.tensors[name]
        dtype = DTYPES[info.dtype]
        if info.numel == 0:
            arr = np.empty(info.shape, dtype=dtype)
        else:
            arr = np.ndarray(
                info.shape, dtype=dtype, buffer=self._mm, offset=self.header.data_start + info.begin
            )
            if not arr.flags.aligned:
                arr = arr.copy()
            if info.dtype == "BOOL":
                arr = np.asarray(arr.view(np.uint8) != 0)  # normalise stray bytes to 0/1
        arr.flags.writeable = False
        return arr

    def read_into(self, name: str, out: np.ndarray) -> None:
        """Copy tensor ``name``'s raw bytes into the C-contiguous buffer ``out`` with ``pread``
        (no mapping: the page cache is not charged to this process, so a load never holds the
        file and its copy resident at once)."""
        self.read_tensors_into({name: out}, threads=1)

    def read_tensors_into(self, targets: Mapping[str, np.ndarray], *, threads: int = 2) -> None:
        """Copy the raw bytes of several tensors into their buffers (``{name: out}``, each
        writable, C-contiguous and of the tensor's byte size), in pieces of
        :data:`READ_PIECE_BYTES` on ``threads`` threads: a read from the page cache is
        CPU-bound (faulting in and zeroing fresh pages, then the copy), so two cores halve it.

        Raises ``ValueError`` for a wrong buffer or a closed file, :class:`SafetensorsError` if
        the file shrank, ``OSError`` on an I/O error; the buffers' contents are then undefined.
        """
        if self._fd is None:
            raise ValueError(f"{self.path}: file is closed")
        piece = READ_PIECE_BYTES
        pieces: list[tuple[memoryview, int]] = []
        for name, out in targets.items():
            info = self.header.tensors[name]
            if not isinstance(out, np.ndarray) or not out.flags.c_contiguous:
                raise ValueError(f"{name}: the buffer must be a C-contiguous numpy array")
            if not out.flags.writeable:
                raise ValueError(f"{name}: the buffer is read-only")
            view = out.reshape(-1).view(np.uint8).data  # a memoryview: C-contiguous
            if view.nbytes != info.nbytes:
                raise ValueError(f"{name}: buffer of {view.nbytes} bytes for {info.nbytes}")
            start = self.header.data_start + info.begin
            pieces += [(view[i : i + piece], start + i) for i in range(0, info.nbytes, piece)]
        _read_pieces(self._fd, pieces, threads, str(self.path))

    def get(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a numpy array; BF16 is widened (exactly) to a float32 copy."""
        arr = self.get_raw(name)
        if self.header.tensors[name].dtype == "BF16":
            arr = bfloat16_bits_to_float32(arr)
            arr.flags.writeable = False
        return arr


def read_safetensors(path: str | os.PathLike, *, raw_bf16: bool = False) -> dict[str, np.ndarray]:
    """Read every tensor of the safetensors file at ``path``.

    Returns read-only arrays in header order: views into a memory mapping of the file (copies
    when misaligned). BF16 tensors are widened to float32 copies unless ``raw_bf16`` is true, in
    which case their uint16 bit patterns are returned. Raises :class:`SafetensorsError`.
    """
    with SafetensorsFile(path) as f:
        return {name: (f.get_raw(name) if raw_bf16 else f.get(name)) for name in f.keys()}


# --------------------------------------------------------------------------------------------
# writing


def _prepare(name: object, value: object) -> tuple[str, np.ndarray]:
    """Validate one tensor for the writer; return its dtype name and little-endian C data."""
    if not isinstance(name, str):
        raise SafetensorsError(f"tensor names must be strings, got {name!r}")
    if name == "__metadata__":
        raise SafetensorsError("'__metadata__' is reserved and cannot name a tensor")
    if isinstance(value, RawTensor):
        if value.dtype not in DTYPES:
            raise SafetensorsError(f"tensor {name!r}: unknown dtype {value.dtype!r}")
        storage = DTYPES[value.dtype]
        data = np.asarray(value.data)
        if data.dtype.kind not in "biuf" or data.dtype.itemsize != storage.itemsize:
            raise SafetensorsError(
                f"tensor {name!r}: {data.dtype} data cannot be stored as {value.dtype}"
            )
        if value.dtype == "BOOL":
            data = data.astype(np.bool_)
        # Little-endian bytes of the given values, reinterpreted as the storage dtype.
        data = np.asarray(data, dtype=data.dtype.newbyteorder("<"), order="C").view(storage)
        return value.dtype, data
    if not isinstance(value, np.ndarray | np.generic):
        raise SafetensorsError(f"tensor {name!r}: expected a numpy array, got {type(value)}")
    arr = np.asarray(value)
    le = arr.dtype.newbyteorder("<")
    st = _NP_TO_ST.get(le) if arr.dtype.fields is None else None
    if st is None:
        raise SafetensorsError(f"tensor {name!r}: dtype {arr.dtype} has no safetensors equivalent")
    return st, np.asarray(arr, dtype=le, order="C")


def process_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: the racy way, restored at once
    os.umask(mask)
    return mask


def chmod_as_created(fd: int) -> None:
    """Give a file made by ``tempfile`` (always 0600) the mode ``open()`` would have given it
    (0666 minus the umask), so that a voice or cache written for a service account can be read
    by it, as the user's umask allows."""
    os.fchmod(fd, 0o666 & ~process_umask())


def write_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray | RawTensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` to ``path`` in safetensors format, as the official library lays it out.

    Values are numpy arrays (bool, (u)int8-64, float16/32/64) or :class:`RawTensor` for an
    explicit dtype such as BF16. ``metadata`` (str -> str) becomes ``__metadata__``. The file is
    written to a temporary name in the same folder and renamed into place.
    """
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("metadata must map strings to strings")
    prepared = [(name, *_prepare(name, value)) for name, value in tensors.items()]
    prepared.sort(key=lambda t: (-_DTYPE_RANK[t[1]], t[0]))

    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, st, data in prepared:
        header[name] = {
            "dtype": st,
            "shape": list(data.shape),
            "data_offsets": [offset, offset + data.nbytes],
        }
        offset += data.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a directory: give a file name, such as {path / 'voice.safetensors'}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        chmod_as_created(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for _, _, data in prepared:
                if data.nbytes:
                    f.write(data.data.cast("B"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
