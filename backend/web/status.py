"""``/status``'s payload: what a project owner wants to see, and what the dashboard draws.

The version Label Studio uses and the newest local one, what the active version recorded
(``backend.store.version_meta``), the last retrain's outcome, the queues, the full path's decisions, the task
mirror's last full read, and warnings that say what to do.
"""
from __future__ import annotations

from typing import Any

from backend.jobs.outcomes import load_retrain_outcomes
from backend.jobs.queueing import FINETUNE, RESYNC, queue_status
from backend.labelstudio.client import UNCERTAINTY_SAMPLING
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder
from backend.store.encoder_registry import EncoderRegistry
from backend.store.setup_record import SetupRecord
from backend.store.version_meta import VersionMeta
from backend.web.context import WebContext

#: What ``/status`` shows of the active version's metadata (None for each while no version is active).
META_FIELDS = ("phase", "phase_reason", "strategy", "task_type", "evaluation", "dropped_spans", "stopping", "n_labeled",
               "n_pool", "skipped_tasks", "encoder", "read")


def status_payload(context: WebContext, project_id: int, dashboard_url: str) -> dict[str, Any]:
    store = context.store
    active, latest = store.active(project_id), store.latest(project_id)
    ledger = store.ledger(project_id).read()
    setup_record = store.setup_record(project_id).read()
    meta = active.meta() if active else None
    outcomes = load_retrain_outcomes(context.redis, project_id)
    return dict(
        project=project_id,
        model_version=active.name if active else None,
        label_studio={"model_version": ledger.ls_model_version, "sampling": ledger.ls_sampling, "checked_at": ledger.checked_at},
        newest_local_version=latest.name if latest else None,
        connected=setup_record is not None,
        settings=setup_record.settings.to_dict() if setup_record else None,
        **{name: getattr(meta, name) if meta else None for name in META_FIELDS},
        versions=[v.name for v in reversed(store.versions(project_id))],
        last_retrain=outcomes[0] if outcomes else None,
        queue=queue_status(context.redis, context.service, project_id),
        full_path=_full_path_status(context, project_id, setup_record),
        task_mirror=_mirror_status(context, project_id),
        warnings=_warnings(ledger, active, latest, meta),
        dashboard=dashboard_url,
    )


def _warnings(ledger, active, latest, meta: VersionMeta | None) -> list[str]:
    warnings = []
    if ledger.sampling_set and ledger.ls_sampling not in (None, UNCERTAINTY_SAMPLING):
        warnings.append(
            f"Label Studio serves tasks in {ledger.ls_sampling!r} order, which ignores this backend's ranking; "
            f"choose {UNCERTAINTY_SAMPLING!r} in the project's settings to use it"
        )
    if latest is not None and (active is None or latest.name != active.name):
        warnings.append(f"the newest local version {latest.name} is not active in Label Studio (its write-back did not finish)")
    dropped = meta.dropped_spans if meta else {}
    if dropped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))
        warnings.append(f"{sum(dropped.values())} annotated spans could not be used ({reasons}); see README, NER projects")
    return warnings


def _mirror_status(context: WebContext, project_id: int) -> dict[str, Any]:
    """The last full read of the project's tasks, and the resync job's queue."""
    folder = mirror_folder(context.store.project_dir(project_id))
    last = TaskMirror(folder, context.service.resync_s).last_full_read() if TaskMirror.exists(folder) else None
    return {"last_full_read": last, "resync": queue_status(context.redis, context.service, project_id, RESYNC)}


def _full_path_status(context: WebContext, project_id: int, setup_record: SetupRecord | None) -> dict[str, Any] | None:
    """Fine-tunes of the encoder: queued or running, and the last decisions (adopted, rejected, stale, ...)."""
    if setup_record is None or setup_record.settings.model_mode != "finetune":
        return None
    registry = EncoderRegistry(context.store.project_dir(project_id))
    newest = registry.newest()
    return {
        **queue_status(context.redis, context.service, project_id, FINETUNE),
        "encoder_in_use": newest.folder if newest else "base",
        "decisions": [d.to_dict() for d in registry.decisions()[-5:]][::-1],
    }
