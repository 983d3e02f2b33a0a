import os
import signal
import subprocess
import sys

import pytest

from backend.store.ledger import Ledger
from backend.store.model_store import ModelStore
from backend.store.version_meta import VersionMeta


def marked(project_id, marker):
    """A version's metadata that says which publish wrote it (in its strategy field)."""
    return VersionMeta(project=project_id, trained=False, strategy=marker, phase=None, phase_reason=None, settings={}, classes=[])


def publish(store, project_id, marker):
    with store.publish(project_id) as (name, folder):
        marked(project_id, marker).save(folder)
    return name


def test_versions_are_numbered_and_the_newest_is_served(tmp_path):
    store = ModelStore(tmp_path)
    assert store.latest(7) is None
    first, second = publish(store, 7, "a"), publish(store, 7, "b")
    assert first.startswith("al-p7-v0001-") and second.startswith("al-p7-v0002-")
    assert store.latest(7).name == second and store.latest(7).meta() == marked(7, "b")
    assert [v.name for v in store.versions(7)] == [first, second]
    assert store.latest(8) is None  # projects never see each other's versions
    assert store.get(8, first) is None and store.get(7, "../project-8") is None


def test_a_half_written_version_is_never_visible(tmp_path):
    store = ModelStore(tmp_path)
    good = publish(store, 1, "good")
    with pytest.raises(RuntimeError):
        with store.publish(1) as (name, folder):
            (folder / "meta.json").write_text('{"marker": "half')
            assert store.latest(1).name == good  # readers keep seeing the complete one while writing
            raise RuntimeError("worker killed mid-write")
    assert store.latest(1).name == good
    assert [p.name for p in store.project_dir(1).iterdir()] == [good]  # the staging folder is gone


def test_old_versions_are_removed_newest_kept(tmp_path):
    store = ModelStore(tmp_path)
    names = [publish(store, 3, str(i)) for i in range(5)]
    assert store.remove_older_than(3, keep=2) == names[:3]
    assert [v.name for v in store.versions(3)] == names[3:]


def test_the_active_version_is_never_removed(tmp_path):
    store = ModelStore(tmp_path)
    names = [publish(store, 3, str(i)) for i in range(5)]
    store.ledger(3).write(Ledger(written=(names[0],), active=names[0]))
    assert store.remove_older_than(3, keep=2) == names[1:3]
    assert [v.name for v in store.versions(3)] == [names[0], *names[3:]]
    assert store.active(3).name == names[0]


def test_staging_left_by_a_killed_publish_is_cleaned_up(tmp_path):
    # A real process, killed with SIGKILL inside the publish: no finally clause runs.
    code = (
        "import os, signal, sys; from backend.store.model_store import ModelStore; store = ModelStore(sys.argv[1])\n"
        "with store.publish(4) as (name, folder):\n"
        "    (folder / 'meta.json').write_text('{}'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=os.getcwd())
    assert killed.returncode == -signal.SIGKILL
    store = ModelStore(tmp_path)
    leftovers = [p.name for p in store.project_dir(4).iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".staging-") and store.versions(4) == []
    assert store.remove_stale_staging(4) == leftovers
    assert list(store.project_dir(4).iterdir()) == []
