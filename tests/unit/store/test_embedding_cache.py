import os
import shutil
import time

import numpy as np
import pytest

from backend.store import embedding_cache
from backend.store.embedding_cache import EmbeddingCache, encoder_fingerprint

DIM = 8


def _vectors(n, seed=0, dim=DIM):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _fake_model(folder, weights=b"\0" * 64):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_vectors_survive_a_new_instance(tmp_path):
    ids, texts, vectors = [5, 1, 9], ["five", "one", "nine"], _vectors(3)
    EmbeddingCache(tmp_path, "a" * 16, DIM).store(ids, texts, vectors)

    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    got, hit = cache.lookup([9, 2, 5, 1], ["nine", "two", "five", "one"])
    assert hit.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(got[[0, 2, 3]], vectors[[2, 0, 1]])
    assert not got[1].any()
    assert (cache.stats.hits, cache.stats.misses) == (3, 1)
    assert len(cache) == 3


def test_a_changed_text_is_a_miss_then_served_with_its_new_vector(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    old, new = _vectors(2, seed=1), _vectors(1, seed=2)
    cache.store([1, 2], ["before", "other"], old)

    _, hit = cache.lookup([1, 2], ["after", "other"])
    assert hit.tolist() == [False, True]
    cache.store([1], ["after"], new)
    got, hit = cache.lookup([1, 2], ["after", "other"])
    assert hit.all()
    np.testing.assert_array_equal(got, np.stack([new[0], old[1]]))
    # The old text no longer matches anything: the row it had is garbage.
    assert not cache.lookup([1], ["before"])[1].any()


def test_a_repeated_id_in_one_store_keeps_its_last_vector(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    vectors = _vectors(3)
    cache.store([4, 4, 7], ["x", "y", "z"], vectors)
    got, hit = cache.lookup([4, 7], ["y", "z"])
    assert hit.all()
    np.testing.assert_array_equal(got, vectors[1:])


def test_strided_and_float64_vectors_are_stored_as_their_float32_values(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    every_other = _vectors(6)[::2]  # a strided view, not contiguous
    cache.store([1, 2, 3], ["a", "b", "c"], every_other)
    cache.store([4], ["d"], _vectors(1).astype(np.float64))
    got, hit = cache.lookup([1, 2, 3, 4], ["a", "b", "c", "d"])
    assert hit.all()
    np.testing.assert_array_equal(got, np.vstack([every_other, _vectors(1)]))


def test_the_fingerprint_names_the_encoder_not_its_folder(tmp_path):
    model = _fake_model(tmp_path / "model")
    twin = tmp_path / "twin"
    shutil.copytree(model, twin)  # copy2: same bytes, same mtimes
    base = encoder_fingerprint(str(model), 128, "float32")
    assert len(base) == 16 and int(base, 16) >= 0
    assert encoder_fingerprint(str(twin), 128, "float32") == base
    assert encoder_fingerprint(str(model), 256, "float32") != base
    assert encoder_fingerprint(str(model), 128, "bfloat16") != base  # bf16 vectors are other vectors
    (model / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n")
    assert encoder_fingerprint(str(model), 128, "float32") != base

    weights = twin / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert encoder_fingerprint(str(twin), 128, "float32") != base


def test_a_new_encoder_starts_empty_and_the_old_cache_can_be_cleared(tmp_path):
    model = _fake_model(tmp_path / "model")
    root = tmp_path / "project-1" / "embeddings"
    old_print = encoder_fingerprint(str(model), 128, "float32")
    EmbeddingCache(root, old_print, DIM).store([1, 2], ["a", "b"], _vectors(2))

    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000_000))
    for new_print in (encoder_fingerprint(str(model), 128, "float32"), encoder_fingerprint(str(model), 64, "float32")):
        assert new_print != old_print
        cache = EmbeddingCache(root, new_print, DIM)
        assert not cache.lookup([1, 2], ["a", "b"])[1].any()
        cache.store([1], ["a"], _vectors(1))

    (root / "not-a-cache").mkdir()  # anything not named like a fingerprint is left alone
    removed = cache.clear_other_fingerprints()
    assert old_print in removed and len(removed) == 2
    assert sorted(p.name for p in root.iterdir()) == sorted([new_print, "not-a-cache"])
    assert cache.lookup([1], ["a"])[1].all()


def test_the_matrix_is_memory_mapped_and_grows_by_appending(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    assert cache.matrix.shape == (0, DIM)
    cache.store([1, 2], ["a", "b"], _vectors(2))
    assert isinstance(cache.matrix, np.memmap) and cache.matrix.shape == (2, DIM)
    cache.store([3], ["c"], _vectors(1, seed=3))
    assert isinstance(cache.matrix, np.memmap) and cache.matrix.shape == (3, DIM)


def test_compaction_keeps_every_live_vector_exactly(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    ids = list(range(100))
    expected = {}
    for round_ in range(4):  # every round rewrites a third of the texts, which makes garbage
        changed = ids if round_ == 0 else ids[round_::3]
        texts = [f"task {i} round {round_}" for i in changed]
        vectors = _vectors(len(changed), seed=round_)
        cache.store(changed, texts, vectors)
        expected.update({i: (t, v) for i, t, v in zip(changed, texts, vectors)})
    rows_before = cache.matrix.shape[0]
    assert rows_before > len(ids)

    cache.compact()
    assert cache.matrix.shape[0] == len(ids)
    assert [p.name for p in tmp_path.joinpath("a" * 16).glob("vectors-*.f32")] == ["vectors-1.f32"]
    for reader in (cache, EmbeddingCache(tmp_path, "a" * 16, DIM)):
        got, hit = reader.lookup(ids, [expected[i][0] for i in ids])
        assert hit.all()
        np.testing.assert_array_equal(got, np.stack([expected[i][1] for i in ids]))


def test_store_compacts_once_garbage_is_over_half_the_file(tmp_path):
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    cache.store([1, 2], ["a", "b"], _vectors(2))
    cache.store([1], ["a2"], _vectors(1, seed=1))
    assert cache.matrix.shape[0] == 3  # 1 of 3 rows is garbage: kept
    latest = _vectors(1, seed=2)
    cache.store([1], ["a3"], latest)  # 2 of 4 rows: not over half
    assert cache.matrix.shape[0] == 4
    cache.store([1], ["a4"], latest)  # 3 of 5 rows: compacted
    assert cache.matrix.shape[0] == 2
    got, hit = cache.lookup([1], ["a4"])
    assert hit.all()
    np.testing.assert_array_equal(got[0], latest[0])


def test_a_reader_sees_what_the_writer_stores_and_compacts(tmp_path):
    writer = EmbeddingCache(tmp_path, "a" * 16, DIM)
    reader = EmbeddingCache(tmp_path, "a" * 16, DIM)
    assert not reader.lookup([1], ["a"])[1].any()
    vectors = _vectors(2)
    writer.store([1, 2], ["a", "b"], vectors)
    assert reader.lookup([1, 2], ["a", "b"])[1].all()
    writer.store([2], ["b2"], vectors[:1])
    writer.compact()
    got, hit = reader.lookup([1, 2], ["a", "b2"])
    assert hit.all()
    np.testing.assert_array_equal(got, vectors[[0, 0]])


def test_a_crash_before_the_index_is_replaced_keeps_the_old_vectors(tmp_path, monkeypatch):
    folder = tmp_path / ("a" * 16)
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    old = _vectors(3)
    cache.store([1, 2, 3], ["a", "b", "c"], old)

    def crash(*args):
        raise OSError("killed between the append and the index")

    with monkeypatch.context() as patch:
        patch.setattr(embedding_cache.os, "replace", crash)
        with pytest.raises(OSError, match="killed"):
            cache.store([2, 4], ["b changed", "d"], _vectors(2, seed=9))
    assert (folder / "vectors-0.f32").stat().st_size == 5 * DIM * 4  # the rows did land
    assert sorted(p.name for p in folder.iterdir()) == ["index.npz", "vectors-0.f32"]  # no temp file left

    for reader in (cache, EmbeddingCache(tmp_path, "a" * 16, DIM)):
        got, hit = reader.lookup([1, 2, 3, 4], ["a", "b", "c", "d"])
        assert hit.tolist() == [True, True, True, False]
        np.testing.assert_array_equal(got[:3], old)

    # A torn row from a crash mid-append is cut off; the next store appends after the orphaned rows.
    with open(folder / "vectors-0.f32", "ab") as handle:
        handle.write(b"\1" * 7)
    fresh = _vectors(1, seed=5)
    cache.store([4], ["d"], fresh)
    got, hit = EmbeddingCache(tmp_path, "a" * 16, DIM).lookup([1, 2, 3, 4], ["a", "b", "c", "d"])
    assert hit.all()
    np.testing.assert_array_equal(got, np.concatenate([old, fresh]))


def test_a_crash_during_compaction_keeps_the_old_matrix(tmp_path, monkeypatch):
    folder = tmp_path / ("a" * 16)
    cache = EmbeddingCache(tmp_path, "a" * 16, DIM)
    vectors = _vectors(2)
    cache.store([1, 2], ["a", "b"], vectors)
    with monkeypatch.context() as patch:
        patch.setattr(embedding_cache.os, "replace", lambda *args: (_ for _ in ()).throw(OSError("killed")))
        with pytest.raises(OSError):
            cache.compact()
    assert (folder / "vectors-1.f32").exists()  # the stray copy
    got, hit = EmbeddingCache(tmp_path, "a" * 16, DIM).lookup([1, 2], ["a", "b"])
    assert hit.all()
    np.testing.assert_array_equal(got, vectors)

    cache.compact()
    assert sorted(p.name for p in folder.glob("vectors-*.f32")) == ["vectors-2.f32"]
    np.testing.assert_array_equal(cache.lookup([1, 2], ["a", "b"])[0], vectors)


def test_a_cache_of_another_width_is_refused(tmp_path):
    EmbeddingCache(tmp_path, "a" * 16, DIM).store([1], ["a"], _vectors(1))
    with pytest.raises(ValueError, match="8-dim"):
        EmbeddingCache(tmp_path, "a" * 16, 16)
    with pytest.raises(ValueError):
        EmbeddingCache(tmp_path, "b" * 16, DIM).store([1], ["a"], _vectors(1, dim=4))


def test_a_hundred_thousand_tasks_and_a_small_lookup_does_not_read_the_matrix(tmp_path):
    n, dim = 100_000, 384  # MiniLM's width: a 154 MB matrix
    ids = np.arange(n) * 3 + 7
    texts = [f"tweet number {i}" for i in ids]
    vectors = _vectors(n, dim=dim)
    started = time.perf_counter()
    EmbeddingCache(tmp_path, "a" * 16, dim).store(ids, texts, vectors)
    stored = time.perf_counter()
    cache = EmbeddingCache(tmp_path, "a" * 16, dim)
    opened = time.perf_counter()
    got, hit = cache.lookup(ids, texts)
    looked_up = time.perf_counter()
    print(f"\n100k x {dim}: store {stored - started:.2f} s, open (index load) {opened - stored:.3f} s, "
          f"lookup of all {looked_up - opened:.2f} s")
    assert hit.all()
    np.testing.assert_array_equal(got[::997], vectors[::997])
    sample = np.random.default_rng(1).choice(n, 1000, replace=False)
    expected = vectors[sample]
    del got, vectors

    if not os.path.exists("/proc/self/status"):
        pytest.skip("the resident set split (RssAnon / RssFile) is read from Linux's /proc/self/status")
    small = EmbeddingCache(tmp_path, "a" * 16, dim)  # a fresh mapping: none of its pages touched yet
    before = _resident()
    started = time.perf_counter()
    got, hit = small.lookup(ids[sample], [texts[i] for i in sample])
    elapsed = time.perf_counter() - started
    after = _resident()
    matrix_bytes = n * dim * 4
    grown = {key: (after[key] - before[key]) / 1e6 for key in after}
    print(f"lookup of 1k ids: {elapsed * 1000:.1f} ms; RSS grew {grown['RssAnon']:.1f} MB anonymous, "
          f"{grown['RssFile']:.1f} MB file-backed, of a {matrix_bytes / 1e6:.0f} MB matrix")
    assert hit.all()
    np.testing.assert_array_equal(got, expected)
    # Copies of the matrix would be anonymous memory. File-backed RSS is the page cache mapped in place (shared,
    # clean, evictable), and kernels that keep files in large folios map a whole folio (up to 2 MB) per row
    # touched, so 1k random rows can map most of a 154 MB file without copying any of it.
    assert grown["RssAnon"] < matrix_bytes / 10 / 1e6


def _resident():
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("RssAnon", "RssFile")}


def _read_while_written(folder, rounds, ready, stop, report):
    """Another process's reader: every hit it sees must be exactly the vector stored for that text."""
    cache = EmbeddingCache(folder, "a" * 16, DIM)
    ids = np.arange(200)
    checked = hits = 0
    rng = np.random.default_rng(0)
    ready.set()
    try:
        while not stop.is_set():
            r = int(rng.integers(rounds))
            got, hit = cache.lookup(ids, [f"{i}:{r}" for i in ids])
            expected = np.repeat((ids * 1000 + r).astype(np.float32)[:, None], DIM, axis=1)
            if not np.array_equal(got[hit], expected[hit]) or got[~hit].any():
                report.put(f"wrong vectors for round {r}")
                return
            checked, hits = checked + 1, hits + int(hit.sum())
        report.put((checked, hits))
    except Exception as error:  # noqa: BLE001 - any failure must reach the parent's assertion
        report.put(repr(error))


def test_a_reader_in_another_process_never_sees_a_wrong_vector(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    rounds, ids = 60, np.arange(200)
    ready, stop, report = context.Event(), context.Event(), context.Queue()
    writer = EmbeddingCache(tmp_path, "a" * 16, DIM)
    writer.store([0], ["0:0"], np.zeros((1, DIM), np.float32))  # the reader needs a folder to map
    reader = context.Process(target=_read_while_written, args=(tmp_path, rounds, ready, stop, report))
    reader.start()
    try:
        assert ready.wait(timeout=60)
        for r in range(rounds):  # each round changes half the texts, so store compacts now and then
            changed = ids if r == 0 else ids[r % 2 :: 2]
            writer.store(changed, [f"{i}:{r}" for i in changed],
                         np.repeat((changed * 1000 + r).astype(np.float32)[:, None], DIM, axis=1))
            time.sleep(0.01)
    finally:
        stop.set()
        outcome = report.get(timeout=60)
        reader.join(timeout=10)
    assert isinstance(outcome, tuple), outcome
    checked, hits = outcome
    print(f"\nreader: {checked} lookups, {hits} hits, all exact")
    assert checked > 0 and hits > 0
    assert int(next((tmp_path / ("a" * 16)).glob("vectors-*.f32")).stem.split("-")[1]) > 1  # it did compact
