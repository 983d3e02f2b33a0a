"""A retrain's last three stages: publish the version on disk, write it to Label Studio, prune older ones.

``publish_version`` writes the model, the pool ranking and the metadata as one atomic version
(``backend.store.model_store``). ``write_back`` records it in the ledger before its first prediction leaves,
writes the ``top_k`` most informative tasks' predictions, switches the project to it, and only then makes it
the active version here. ``prune`` deletes this backend's older versions from Label Studio, never anything
the ledger does not list. The caller holds the project lock; every write checks it first.
"""
from __future__ import annotations

import time
from dataclasses import replace

from backend.core.labels import LabelSpec
from backend.core.progress import Progress
from backend.jobs.project_lock import HeldLock
from backend.labelstudio.client import LabelStudioClient
from backend.models.base import TextClassifier
from backend.models.families import save_classifier
from backend.store.model_store import ModelStore
from backend.store.pool_ranking import PoolRanking
from backend.store.version_meta import VersionMeta

#: Local model versions kept per project besides the active one.
KEEP_LOCAL_VERSIONS = 3


def publish_version(
    store: ModelStore, project_id: int, classifier: TextClassifier | None, ranking: PoolRanking, meta: VersionMeta
) -> str:
    """Write classifier, ranking and metadata as one atomic version; returns its name."""
    with store.publish(project_id) as (version, folder):
        if classifier is not None:
            save_classifier(classifier, folder)
        ranking.save(folder)
        meta.published_as(version, time.time()).save(folder)
    return version


def write_back(
    ls: LabelStudioClient, store: ModelStore, held: HeldLock, project_id: int, version: str, ranking: PoolRanking,
    spec: LabelSpec, top_k: int, progress: Progress | None = None,
) -> int:
    """Predictions to Label Studio, then the switch; the version becomes active here only after both."""
    ledger_file = store.ledger(project_id)
    held.ensure_held()
    # On record before the first prediction leaves, so a write killed halfway is still pruned later.
    ledger_file.write(ledger_file.read().with_written(version))
    rows = sorted(ranking.rows().items(), key=lambda row: row[1][0])[:top_k]
    predictions = [{"task": task_id, **spec.prediction(version, score, label, p)} for task_id, (score, label, p) in rows]
    held.ensure_held()
    ls.write_predictions(project_id, predictions, progress)
    held.ensure_held()
    # Uncertainty sampling is set once, at the first activation; an owner's later choice is kept.
    ls.activate_version(project_id, version, set_sampling=not ledger_file.read().sampling_set)
    project = ls.project(project_id)
    ledger_file.write(
        replace(
            ledger_file.read(), active=version, sampling_set=True,
            ls_model_version=project["model_version"], ls_sampling=project["sampling"], checked_at=time.time(),
        )
    )
    return len(predictions)


def prune(
    ls: LabelStudioClient, store: ModelStore, project_id: int, held: HeldLock, keep_within: int | None = None
) -> list[str]:
    """Delete this backend's older versions from Label Studio; the caller holds the project lock.

    Only versions in the project's ledger are candidates, so an owner's own versions are never touched,
    and neither the version active in Label Studio nor the one this backend activated is deleted.

    LS deletes predictions one by one (a signal per row: about 150 per second), so with ``keep_within`` (a
    retrain is waiting: an annotator is labeling) only the oldest versions are deleted, just enough that the
    backend's predictions stored in LS stay within ``keep_within``; the rest waits for a quieter retrain.
    """
    ledger_file = store.ledger(project_id)
    ledger = ledger_file.read()
    counts = {version: count for version, count in ls.prediction_versions(project_id).items() if count}
    ls_active = ls.project(project_id)["model_version"]
    doomed = ledger.prunable(set(counts), ls_active)
    if keep_within is not None:
        stored = sum(counts[version] for version in ledger.written if version in counts)
        needed = []
        for version in doomed:
            if stored <= keep_within:
                break
            needed.append(version)
            stored -= counts[version]
        doomed = needed
    for version in doomed:
        held.ensure_held()
        ls.delete_version(project_id, version)
    # Versions Label Studio no longer holds (deleted here, or by the owner) leave the ledger.
    gone = {version for version in ledger.written if version not in counts or version in doomed} - {ledger.active, ls_active}
    ledger_file.write(ledger.without(gone))
    return doomed
