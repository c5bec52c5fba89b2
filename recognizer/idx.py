"""NIST's IDX format (EMNIST's files and the kept drawings' dataset export), in one place: read, write, orient.

An IDX file of unsigned bytes is the magic ``00 00 08 <ndim>``, ``ndim`` big-endian uint32 dimensions, then the
data; EMNIST ships them gzipped. EMNIST stores each 28x28 image transposed: ``upright`` turns stored images (one or
a batch) the way a person reads them, which is the orientation everything past reading uses.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np


class IdxError(ValueError):
    """An IDX file is missing, truncated or corrupt; the message names the file and what to do."""


def read_idx(path: Path) -> np.ndarray:
    """Decode a gzip or raw IDX file; truncation and corruption raise IdxError naming the file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise IdxError(f"{path} is missing.") from None
    except (OSError, EOFError, zlib.error) as err:
        raise IdxError(
            f"{path} is not a readable gzip file ({err}): it is truncated or corrupt. "
            "Delete it and fetch it again (--download, or NIST's gzip.zip)."
        ) from None
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise IdxError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(dims))
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise IdxError(
            f"{path} is truncated or padded: its header promises {dims} = {expected} bytes, "
            f"it holds {len(body)}. Delete it and fetch it again."
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (NIST's format): magic 0x00000803/0x00000801, big-endian dims, then the data."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # no timestamp: the same drawings give the same file


def upright(images: np.ndarray) -> np.ndarray:
    """Images as stored in IDX files (one (28, 28) or a batch (N, 28, 28)) -> upright, same dtype, contiguous."""
    return np.ascontiguousarray(np.swapaxes(images, -1, -2))
