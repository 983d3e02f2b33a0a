"""When to stop labeling: once the model's predictions on the pool have stopped changing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .statistics import RoundStatistics


@dataclass(frozen=True)
class Recommendation:
    """The stopping advice for the latest model version.

    stop:            True when labeling more is unlikely to change the model.
    reason:          a sentence with the numbers behind the advice, for people.
    mean_kappa:      mean kappa over the window, None while the history is too short.
    versions_needed: how many more model versions are needed before a recommendation can be made.
    """

    stop: bool
    reason: str
    mean_kappa: float | None
    versions_needed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StoppingCriterion:
    """Stabilizing predictions: stop when the mean Cohen's kappa between consecutive model versions'
    pool predictions, over the last ``window`` versions, is at least ``kappa_threshold``, the latest
    version changed at most ``max_changed_fraction`` of the pool predictions, and (if set) the pool's
    mean normalized entropy is at most ``max_uncertainty``.

    Bloodgood & Vijay-Shanker (2009), "A Method for Stopping Active Learning Based on Stabilizing
    Predictions and the Need for User-Adjustable Stopping"; the windowed mean follows small-text's
    ``KappaAverage`` (Schröder, Niekler & Potthast, 2023, "Small-Text: Active Learning for Text
    Classification in Python"). ``max_uncertainty`` is off by default because a stable model can stay
    uncertain on genuinely ambiguous items; set it to also require a confident model.
    """

    def __init__(
        self,
        *,
        kappa_threshold: float = 0.99,
        window: int = 3,
        max_changed_fraction: float = 0.01,
        max_uncertainty: float | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.kappa_threshold = kappa_threshold
        self.window = window
        self.max_changed_fraction = max_changed_fraction
        self.max_uncertainty = max_uncertainty

    def recommend(self, history: Sequence[RoundStatistics]) -> Recommendation:
        """Advice from the per-version statistics, oldest first; the last entry is the current version."""
        comparable = _trailing_with_kappa(history)
        if comparable < self.window:
            needed = self.window - comparable
            # A version without kappa (the first one) only becomes the baseline of the next comparison.
            if comparable == 0 and not history:
                needed += 1
            return Recommendation(
                stop=False,
                reason=(
                    f"not enough history: {needed} more model version{'s' if needed != 1 else ''} "
                    f"needed to compare {self.window} consecutive versions' predictions"
                ),
                mean_kappa=None,
                versions_needed=needed,
            )
        latest = history[-1]
        mean_kappa = float(np.mean([stats.kappa for stats in history[-self.window :]]))
        kappa_ok = mean_kappa >= self.kappa_threshold
        changed_ok = latest.changed_fraction <= self.max_changed_fraction
        uncertainty_ok = (
            self.max_uncertainty is None or latest.mean_normalized_entropy <= self.max_uncertainty
        )
        findings = [
            f"mean kappa {mean_kappa:.3f} over the last {self.window} versions "
            f"{'≥' if kappa_ok else '<'} {self.kappa_threshold}",
            f"{latest.changed_fraction:.1%} of pool predictions changed "
            f"({'≤' if changed_ok else '>'} {self.max_changed_fraction:.1%})",
        ]
        if self.max_uncertainty is not None:
            findings.append(
                f"mean normalized entropy {latest.mean_normalized_entropy:.3f} "
                f"{'≤' if uncertainty_ok else '>'} {self.max_uncertainty}"
            )
        stop = kappa_ok and changed_ok and uncertainty_ok
        verdict = "new labels have stopped paying" if stop else "the model is still learning, keep labeling"
        return Recommendation(
            stop=stop,
            reason=f"{_join(findings)}: {verdict}",
            mean_kappa=mean_kappa,
            versions_needed=0,
        )


def _trailing_with_kappa(history: Sequence[RoundStatistics]) -> int:
    """How many of the latest versions were compared with their predecessor (a restart resets the run)."""
    count = 0
    for stats in reversed(history):
        if stats.kappa is None or stats.changed_fraction is None:
            break
        count += 1
    return count


def _join(findings: list[str]) -> str:
    return findings[0] if len(findings) == 1 else ", ".join(findings[:-1]) + " and " + findings[-1]
