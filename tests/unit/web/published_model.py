"""One small project's model, published and activated the way the worker does it, for the route tests."""
from __future__ import annotations

import functools

import numpy as np

from backend.core.settings import ProjectSettings
from backend.jobs.publish import publish_version
from backend.learning.scoring import ls_scores
from backend.models.families import build_classifier
from backend.store.ledger import Ledger
from backend.store.model_store import ModelStore
from backend.store.pool_ranking import PoolRanking
from backend.store.version_meta import VersionMeta
from strategies.uncertainty import margin

PROJECT_ID = 3
CONFIG = """<View><Text name="body" value="$review"/>
<Choices name="mood" toName="body" choice="single"><Choice value="pos"/><Choice value="neg"/></Choices></View>"""
TRAIN = ["great movie", "awful film", "loved it", "hated it", "wonderful acting", "terrible plot"]
POOL = {101: "superb and moving", 102: "dreadful and dull", 103: "it was a film"}


@functools.cache
def fitted_model():
    """A head-mode classifier, its pool ranking and version metadata; fitted once per session (the slow part)."""
    settings = ProjectSettings(model_mode="head", max_length=16, strategy="margin")
    classifier = build_classifier(["pos", "neg"], settings).fit(TRAIN, np.array([0, 1, 0, 1, 0, 1]))
    proba = classifier.predict_proba(list(POOL.values()))
    informativeness = margin(proba)
    ranking = PoolRanking.build(list(POOL), ls_scores(informativeness), informativeness, proba)
    meta = VersionMeta(
        project=PROJECT_ID, trained=True, strategy="margin", phase="strategy", phase_reason="strategy 'margin'",
        settings=settings.to_dict(), classes=["pos", "neg"],
    )
    return classifier, ranking, meta


def activate(store: ModelStore, project_id: int, version: str) -> None:
    """What the worker records once Label Studio holds a version's predictions and was switched to it."""
    ledger = store.ledger(project_id)
    ledger.write(Ledger(written=(*ledger.read().written, version), active=version, sampling_set=True))


def publish_and_activate(store: ModelStore, project_id: int = PROJECT_ID) -> tuple[str, PoolRanking]:
    classifier, ranking, meta = fitted_model()
    version = publish_version(store, project_id, classifier, ranking, meta)
    activate(store, project_id, version)
    return version, ranking
