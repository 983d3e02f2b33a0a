"""Embeddings of a project's tasks on disk, so a retrain embeds only new or changed texts.

Embedding the pool dominates a frozen-encoder retrain (83 s for 10k tweets on 2 CPU cores); the head takes
milliseconds. Vectors are keyed by task id, text hash and encoder fingerprint.

Layout, under ``MODEL_DIR/project-<id>/embeddings/<fingerprint>/``:

- ``vectors-<generation>.f32``: a headerless float32 matrix, ``dim`` columns, read through ``np.memmap``
  and grown only by appending rows.
- ``index.npz``: ``task_ids`` (int64, sorted), ``rows`` (int64), ``hashes`` (``S32``: blake2b-128 of the
  UTF-8 text, hex), ``matrix`` (the vectors file it refers to) and ``dim``.

Invalidation: a task whose text hash differs from the cached one is a miss; its new vector gets a new row
and the old row becomes garbage. A different encoder (``config.json``, tokenizer files, weights' names,
sizes or mtimes, ``max_length``, pooling, inference precision) gives another fingerprint and so another, empty folder;
``clear_other_fingerprints`` deletes the old ones. When garbage exceeds half the file, ``compact`` copies
the live rows into ``vectors-<generation + 1>.f32``.

Crash safety: ``store`` appends and fsyncs the rows before it replaces the index (temporary file, fsync,
``os.replace``), and ``compact`` fsyncs the new matrix before the index names it. So the index on disk
only ever names rows that are on disk: a crash in between leaves unreferenced rows (garbage) or a stray
matrix file (removed by the next compaction), never an index pointing past the data.

Concurrency: one writer at a time (the caller holds the project's lock). Readers in other processes may
look up concurrently: each call re-reads the index once it was replaced, and a compaction writes a new
file instead of rewriting the mapped one, so a reader's mapping stays valid (Linux keeps an unlinked but
mapped file alive).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POOLING = "mean"
_FORMAT = "embedding-cache-1"  # bump when the layout changes: old folders then get other fingerprints
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")
# Small files that change what the encoder computes; hashed by content as they are cheap to read.
_CONTENT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{16}$")
_MATRIX_RE = re.compile(r"^vectors-(\d+)\.f32$")
_CHUNK = 16384


def encoder_fingerprint(model_path: str, max_length: int, precision: str) -> str:
    """16 hex digits naming what the encoder computes, not where it lives; weights are never read.

    ``precision`` is the inference precision (``backend.models.devices.inference_precision``): bf16 vectors are not
    float32 vectors, so a cache never mixes them.
    """
    folder = Path(model_path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; is it a model folder?")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{_FORMAT}|{POOLING}|{int(max_length)}|{precision}".encode())
    for entry in sorted((e for e in os.scandir(folder) if e.is_file()), key=lambda e: e.name):
        if entry.name in _CONTENT_FILES:
            content = Path(entry.path).read_bytes()
            digest.update(f"\0{entry.name}\0{len(content)}\0".encode() + content)
        elif entry.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(f"\0{entry.name}\0{entry.stat().st_size}\0{entry.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.blake2b(t.encode("utf-8"), digest_size=16).hexdigest() for t in texts], dtype="S32")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class EmbeddingCache:
    def __init__(self, folder: Path, fingerprint: str, dim: int):
        self.root = Path(folder)
        self.fingerprint = fingerprint
        self.folder = self.root / fingerprint
        self.dim = int(dim)
        self.stats = CacheStats()
        self._row_bytes = 4 * self.dim
        self._stamp: tuple[int, int, int] | None = None
        self._load(None)
        self._refresh()  # fail here, not at the first lookup, on a cache of another width

    def lookup(self, task_ids: Sequence[int], texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors (n, dim) float32, zero where ``hit`` is False; ``hit`` bool (n,))."""
        self._refresh()
        ids = np.asarray(task_ids, dtype=np.int64).reshape(-1)
        if len(texts) != len(ids):
            raise ValueError(f"{len(ids)} task ids but {len(texts)} texts")
        vectors = np.zeros((len(ids), self.dim), dtype=np.float32)
        hit = np.zeros(len(ids), dtype=bool)
        if len(ids) and len(self._ids):
            pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
            hit = (self._ids[pos] == ids) & (self._hashes[pos] == text_hashes(texts))
            rows = self._rows[pos[hit]]
            order = np.argsort(rows, kind="stable")  # read the file front to back
            targets, rows = np.flatnonzero(hit)[order], rows[order]
            # Fancy indexing on the memmap reads only the hit rows; chunks bound the temporary copy.
            for start in range(0, len(rows), _CHUNK):
                vectors[targets[start : start + _CHUNK]] = self._matrix[rows[start : start + _CHUNK]]
        self.stats.hits += int(hit.sum())
        self.stats.misses += len(ids) - int(hit.sum())
        return vectors, hit

    def __len__(self) -> int:
        self._refresh()
        return len(self._ids)

    @property
    def matrix(self) -> np.ndarray:
        """The mapped matrix (an ``np.memmap``; an empty array while the file has no rows)."""
        self._refresh()
        return self._matrix

    def store(self, task_ids: Sequence[int], texts: Sequence[str], vectors: np.ndarray) -> None:
        """Append the vectors and point the index at them; only the holder of the project's lock may call it."""
        ids = np.asarray(task_ids, dtype=np.int64).reshape(-1)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim) or len(texts) != len(ids):
            raise ValueError(f"need {len(ids)} texts and vectors of shape ({len(ids)}, {self.dim}), got {len(texts)} and {vectors.shape}")
        if not len(ids):
            return
        hashes = text_hashes(texts)
        _, last = np.unique(ids[::-1], return_index=True)  # a repeated id keeps its last vector, like dict.update
        if len(last) < len(ids):  # only then copy: the vectors of a 100k-task pool are 150 MB
            keep = len(ids) - 1 - last
            ids, hashes, vectors = ids[keep], hashes[keep], vectors[keep]
        self._refresh()
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / self._matrix_name, "ab") as handle:
            # A crash mid-append can leave a partial row; cut it so that rows stay aligned.
            start = handle.tell() // self._row_bytes
            handle.truncate(start * self._row_bytes)  # O_APPEND: the write lands at the new end
            handle.write(memoryview(np.ascontiguousarray(vectors)).cast("B"))  # no bytes copy of the matrix
            handle.flush()
            os.fsync(handle.fileno())  # the rows must be durable before an index can name them
        kept = ~np.isin(self._ids, ids)
        merged = [np.concatenate(pair) for pair in ((self._ids[kept], ids), (self._rows[kept], start + np.arange(len(ids))),
                                                    (self._hashes[kept], hashes))]
        order = np.argsort(merged[0], kind="stable")
        self._write_index(*(column[order] for column in merged), self._matrix_name)
        total = start + len(ids)
        if total - len(self._ids) > total / 2:
            self.compact()

    def compact(self) -> None:
        """Copy the live rows into a new matrix file, then point the index at it and drop the old file."""
        self._refresh()
        old = self.folder / self._matrix_name
        generations = [int(m.group(1)) for p in self.folder.glob("vectors-*.f32") if (m := _MATRIX_RE.match(p.name))]
        name = f"vectors-{max(generations, default=0) + 1}.f32"
        for stray in self.folder.glob("vectors-*.f32"):  # left by a compaction that crashed
            if stray != old:
                stray.unlink()
        order = np.argsort(self._rows, kind="stable")
        new_rows = np.empty_like(self._rows)
        new_rows[order] = np.arange(len(order))
        with open(self.folder / name, "wb") as handle:
            # Chunk by chunk: bounded memory however large the matrix.
            handle.writelines(np.ascontiguousarray(self._matrix[self._rows[order[start : start + _CHUNK]]]).tobytes()
                              for start in range(0, len(order), _CHUNK))
            handle.flush()
            os.fsync(handle.fileno())
        self._write_index(self._ids, new_rows, self._hashes, name)
        old.unlink(missing_ok=True)

    def clear_other_fingerprints(self) -> list[str]:
        """Delete the caches of other encoders (each can be GBs); returns their folder names."""
        doomed = [p for p in self.root.iterdir() if p.is_dir() and p.name != self.fingerprint
                  and _FINGERPRINT_RE.match(p.name)] if self.root.is_dir() else []
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)
        return sorted(p.name for p in doomed)

    def _write_index(self, ids: np.ndarray, rows: np.ndarray, hashes: np.ndarray, matrix_name: str) -> None:
        fd, staging = tempfile.mkstemp(prefix=".index-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, task_ids=ids, rows=rows, hashes=hashes, matrix=np.array(matrix_name),
                         dim=np.array(self.dim))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, self.folder / "index.npz")
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
        directory = os.open(self.folder, os.O_RDONLY)
        os.fsync(directory)  # make the rename itself durable
        os.close(directory)
        self._refresh()

    def _refresh(self) -> None:
        index = self.folder / "index.npz"
        stamp = _stamp(os.stat(index)) if index.exists() else None
        # A compaction may delete the matrix between our reading the index and opening it: read again.
        for attempt in range(3 if stamp != self._stamp else 0):
            try:
                return self._load(index if stamp is not None else None)
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def _load(self, index: Path | None) -> None:
        if index is None:
            self._stamp, self._matrix_name = None, "vectors-0.f32"
            self._ids, self._rows, self._hashes = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, "S32")
        else:
            with open(index, "rb") as handle:  # stamp and content of one file, even if replaced meanwhile
                status = os.fstat(handle.fileno())
                with np.load(handle, allow_pickle=False) as data:
                    if int(data["dim"]) != self.dim:
                        raise ValueError(f"{index} holds {int(data['dim'])}-dim vectors, not {self.dim}")
                    ids, rows, hashes, name = data["task_ids"], data["rows"], data["hashes"], str(data["matrix"])
            self._stamp, self._matrix_name = _stamp(status), name
            self._ids, self._rows, self._hashes = ids, rows, hashes
        path = self.folder / self._matrix_name
        # No file yet is an empty cache, unless the index names rows (then the caller retries).
        n_rows = os.stat(path).st_size // self._row_bytes if len(self._ids) or path.exists() else 0
        if len(self._rows) and self._rows.max() >= n_rows:
            raise RuntimeError(f"{index} names row {self._rows.max()} but {path} has {n_rows} rows")
        # np.memmap refuses an empty file; remapping on every index change picks up appended rows.
        self._matrix = np.memmap(path, np.float32, "r", shape=(n_rows, self.dim)) if n_rows else np.zeros((0, self.dim), np.float32)


def _stamp(status: os.stat_result) -> tuple[int, int, int]:
    # Every write replaces the index; inode, size and mtime together tell a new one even within one mtime tick.
    return status.st_ino, status.st_size, status.st_mtime_ns
