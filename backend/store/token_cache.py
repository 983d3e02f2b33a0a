"""NER projects' token vectors on disk, so a retrain encodes only new or changed texts.

The token tagger (``backend.models.token_head``) reads one vector per token; encoding the pool for them dominates
an NER retrain (2,394 tweets: 32 s on 2 CPU cores), the head's fit takes about a second. A text's token
vectors are kept as one SQLite row: task id, text hash (``embedding_cache.text_hashes``), the encoder
fingerprint (``embedding_cache.encoder_fingerprint``: encoder, ``max_length``, inference precision), the
tokenizer's offsets (int32) and the vectors (float16, half the bytes; a tag's probability moves by less than
the head's own noise). Rows of another fingerprint are deleted when the cache opens: an adopted encoder
starts an empty cache. Writes are transactions, so a killed job leaves the cache as it was; only the holder
of the project lock writes.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.store.embedding_cache import text_hashes

TokenVectors = tuple[np.ndarray, np.ndarray]  # offsets (T, 2) int64, vectors (T, d) float32


class TokenCache:
    def __init__(self, path: Path, fingerprint: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS tokens (task_id INTEGER PRIMARY KEY, text_hash BLOB, fingerprint TEXT, "
            "offsets BLOB, vectors BLOB, dim INTEGER)"
        )

    def clear_other_fingerprints(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM tokens WHERE fingerprint != ?", (self.fingerprint,))

    def lookup(self, task_ids: Sequence[int], texts: Sequence[str]) -> dict[str, TokenVectors]:
        """The cached token vectors of the tasks whose text and encoder are unchanged, by text."""
        wanted = dict(zip(task_ids, zip(text_hashes(texts).tolist(), texts)))
        found: dict[str, TokenVectors] = {}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                f"SELECT task_id, text_hash, offsets, vectors, dim FROM tokens WHERE fingerprint = ? "
                f"AND task_id IN ({','.join('?' * len(chunk))})", (self.fingerprint, *chunk),
            )
            for task_id, text_hash, offsets, vectors, dim in rows:
                expected, text = wanted[task_id]
                if text_hash == expected:
                    found[text] = (
                        np.frombuffer(offsets, dtype=np.int32).reshape(-1, 2).astype(np.int64),
                        np.frombuffer(vectors, dtype=np.float16).reshape(-1, dim).astype(np.float32),
                    )
        return found

    def store(self, task_ids: Sequence[int], texts: Sequence[str], computed: Sequence[TokenVectors]) -> None:
        rows = [
            (int(task_id), text_hash, self.fingerprint, offsets.astype(np.int32).tobytes(),
             vectors.astype(np.float16).tobytes(), int(vectors.shape[1]) if vectors.ndim == 2 else 0)
            for task_id, text_hash, (offsets, vectors) in zip(task_ids, text_hashes(texts).tolist(), computed)
        ]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self.db.close()
