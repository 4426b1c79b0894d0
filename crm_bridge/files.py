"""Attachment files: content-addressed, written atomically, hashed while written.

A file lives at ``<files_dir>/<sha[:2]>/<sha256>``; the same bytes stored twice
take the space once. Writes go to a temporary name, are fsynced, then renamed,
so a crash never leaves a half file under a real name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: str  # relative to files_dir
    size: int
    sha256: str


def _finish(files_dir: Path, tmp: Path, sha: str, size: int) -> StoredFile:
    rel = Path(sha[:2]) / sha
    final = files_dir / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)
    return StoredFile(str(rel), size, sha)


def _tmp(files_dir: Path) -> tuple[int, Path]:
    files_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".upload-", dir=files_dir)
    return fd, Path(name)


def store_bytes(files_dir: Path, data: bytes) -> StoredFile:
    fd, tmp = _tmp(files_dir)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return _finish(files_dir, tmp, hashlib.sha256(data).hexdigest(), len(data))


def store_path(files_dir: Path, source: Path) -> StoredFile:
    digest = hashlib.sha256()
    size = 0
    fd, tmp = _tmp(files_dir)
    with os.fdopen(fd, "wb") as out, source.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return _finish(files_dir, tmp, digest.hexdigest(), size)


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
