"""Verify every member's CRC-32 of a zip file (torch checkpoints, .npz) in one streaming pass.

A flipped byte inside a tensor leaves a checkpoint's structure intact (`decaenv.fetch.structure` reads only
`data.pkl` and the member sizes), so only the CRCs the zip format stores catch it. Stored members (all of
a `torch.save` file) are read straight from the file through one reusable buffer; compressed ones go
through `zipfile`, which checks their CRC itself. CRC-32 comes from ISA-L (`isal`, about 4 GB/s here)
when it is installed, else from zlib (about 0.5 GB/s); `bench/bench_zip_crc.py` measures both.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import Callable, Optional

from decaenv._typing import StrPath
from decaenv.errors import DataError

CHUNK = 4 << 20
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's own local file header layout
_LOCAL_MAGIC = b"PK\x03\x04"


def crc32_function() -> Callable[..., int]:
    """The fastest CRC-32 (zip's polynomial) available: ISA-L's when `isal` is installed, else zlib's."""
    try:
        from isal import isal_zlib

        return isal_zlib.crc32
    except ImportError:
        return zlib.crc32


def _damaged(what: str, detail: str) -> DataError:
    return DataError(
        f"{what} is damaged: {detail}",
        hint="its bytes changed after it was written (a corrupt download or disk): fetch it again",
    )


def verify_zip_crc(path: StrPath, what: str = "", crc32: Optional[Callable[..., int]] = None) -> int:
    """Check every member's stored CRC-32 against its bytes. Returns the number of bytes checked.

    Raises:
        DataError: a member's bytes do not match its CRC, or its local header does not match the
            central directory, or the file is not a readable zip.
    """
    what = what or os.path.basename(path)
    if crc32 is None:
        crc32 = crc32_function()
    checked = 0
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb", buffering=0) as raw:
            size = os.fstat(raw.fileno()).st_size
            buffer = bytearray(CHUNK)
            for info in zf.infolist():
                if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
                    checked += _stored(raw, info, size, buffer, crc32, what)
                else:
                    checked += _compressed(zf, info, what)
    except zipfile.BadZipFile as exc:
        raise _damaged(what, f"not a readable zip ({exc})") from None
    return checked


def _stored(raw, info: zipfile.ZipInfo, size: int, buffer: bytearray, crc32, what: str) -> int:
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
        raise _damaged(what, f"member {info.filename} has no local header")
    fields = _LOCAL_HEADER.unpack(header)
    name_len, extra_len = fields[-2], fields[-1]
    name = raw.read(name_len)
    if name.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace") != info.orig_filename:
        raise _damaged(what, f"member {info.filename}'s local header names another file")
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if start + info.compress_size > size:
        raise _damaged(what, f"member {info.filename} runs past the end of the file (truncated)")
    raw.seek(start)
    view = memoryview(buffer)
    remaining, crc = info.compress_size, 0
    while remaining:
        n = raw.readinto(view[: min(CHUNK, remaining)])
        if not n:
            raise _damaged(what, f"member {info.filename} is truncated")
        crc = crc32(view[:n], crc)
        remaining -= n
    if crc != info.CRC:
        raise _damaged(what, f"member {info.filename} fails its CRC check (crc32 {crc:08x}, stored {info.CRC:08x})")
    return info.compress_size


#: A compressed member may expand to at most this ratio (deflate's real-world ceiling is about 1:1000 on
#: runs of zeros; DECA's and FLAME's arrays compress far less) beyond a small floor.
MAX_RATIO, RATIO_FLOOR = 200, 64 << 20


def _compressed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> int:
    if info.file_size > max(RATIO_FLOOR, info.compress_size * MAX_RATIO):
        raise _damaged(
            what,
            f"member {info.filename} claims to expand {info.compress_size:,} bytes to {info.file_size:,} (a zip bomb)",
        )
    try:
        with zf.open(info) as member:
            while member.read(CHUNK):
                pass
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _damaged(what, f"member {info.filename} does not decompress to its CRC ({exc})") from None
    except NotImplementedError as exc:
        raise _damaged(what, f"member {info.filename}: {exc}") from None
    return info.compress_size
