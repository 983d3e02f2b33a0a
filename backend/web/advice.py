"""Which strategy to pick, from what the label-efficiency benchmark measured: the lines the dashboard shows.

Every figure here comes from ``bench/RESULTS.md``'s realistic protocol (the first 90 labels of a project: 10
drawn at random or by the cold-start ranking, then 8 rounds of 10; the bundled encoder with its head; 5 seeds;
AUC = mean test accuracy over those labels, paired per seed with 95% intervals). The README's "Which strategy
to choose" says the same in prose; when the benchmark is rerun, both change together.
"""
from __future__ import annotations

from typing import Mapping

from backend.core.settings import ProjectSettings

#: A class holding less than this share of the labels counts as rare.
RARE_SHARE = 0.10
#: Below this many labels, class shares say little about the pool.
MIN_LABELS_FOR_SHARES = 20

HONEST = (
    "What to expect: over a project's first 90 labels, the defaults (the cold-start ranking, then margin) beat "
    "labeling in random order by +8.0 points of mean accuracy on BBC News topics (5 classes), +2.3 on SpamAssassin "
    "and +2.7 on a 3-class review set with a rare class, but barely on Rotten Tomatoes reviews (+0.9, interval "
    "-0.4 to +2.2), where the classes are hard to tell apart. When the model stays unsure everywhere, no order "
    "helps much: more labels, or a better encoder, do."
)
CHECK = ("To see what pays on data like yours, replay labels you already have: export them and run "
         "al-simulate with --strategies margin,balanced_margin,random.")

#: What the benchmark says of each strategy a project may run.
STRATEGY_NOTES = {
    "margin": "margin is the default: no other strategy or lever beat it reliably on the four benchmark datasets.",
    "least_confidence": "least_confidence equals margin with two classes; with five (BBC News) it trailed margin.",
    "entropy": "entropy equals margin with two classes; with five (BBC News) it trailed margin. Prefer margin.",
    "cluster_margin": "cluster_margin matched margin within the intervals; it spreads each batch across clusters.",
    "balanced_margin": "balanced_margin gives every predicted class an equal share of each batch, so rare classes "
                       "stay in every batch; on the benchmark sets it stayed within 1 point of margin (-0.8 to "
                       "+0.9, every interval across zero).",
    "information_density": "information_density weights uncertainty by density; it trailed margin by 6.0 points on "
                           "BBC News from a random start. Prefer margin.",
    "coreset": "coreset fell below random order: -5.5 points on BBC News and -5.1 on SpamAssassin. Prefer margin.",
    "random": "random ignores the model: use it only as a baseline.",
    "cold_start": "cold_start ranks without labels; the cold-start phase already serves it until a model trains.",
}
#: Multi-label and NER projects: what ``bench/RESULTS.md`` measured for them, under the same protocol.
HONEST_BY_TASK_TYPE = {
    "multi_label": (
        "What to expect: on a multi-label set built from BBC News (one or two topics per item), no strategy beat "
        "labeling in random order over the first 90 labels: mean_binary_entropy tied it (-0.0 points of subset "
        "accuracy, interval -4.4 to +4.3). The label sets themselves are hard at 90 labels: 0.64 subset accuracy "
        "even with the whole pool labeled."
    ),
    "ner": (
        "What to expect: on WNUT-16 tweets, ranking by mnlp beat labeling in random order by +2.7 points of "
        "entity-F1 over the first 90 labels (interval +0.3 to +5.0), and its 90 tweets held about twice as many "
        "entities. The tagger's ceiling there is low (0.25 entity F1 with every tweet labeled), and fine-tuning "
        "the encoder (model_mode: finetune) did not raise it at 90 or 300 labels."
    ),
}
CHECK_BY_TASK_TYPE = {
    "multi_label": ("To see what pays on data like yours, replay labels you already have: al-simulate with "
                    "--label-separator (or a multiple-choice --label-config) and --strategies mean_binary_entropy,random."),
    "ner": ("To see what pays on data like yours, replay labels you already have: al-simulate on a CoNLL file or a "
            "Labels export with --strategies mnlp,mean_token_entropy,random."),
}
NOTES_BY_TASK_TYPE = {
    "multi_label": {
        "mean_binary_entropy": "mean_binary_entropy is the multi-label default: it tied random order, and no "
                               "multi-label strategy did better.",
        "label_cardinality_inconsistency": "label_cardinality_inconsistency trailed random order by 6.2 points "
                                           "(interval -11.0 to -1.4). Prefer mean_binary_entropy.",
    },
    "ner": {
        "mnlp": "mnlp is the NER default: +2.7 points over random order, the only interval above zero.",
        "mean_token_entropy": "mean_token_entropy gained +2.2 points over random order (interval -1.2 to +5.5). "
                              "Prefer mnlp.",
        "max_token_entropy": "max_token_entropy gained +1.4 points over random order (interval -2.4 to +5.1). "
                             "Prefer mnlp.",
    },
}
#: What the realistic protocol measured for the full path on single-label projects, by what a project runs:
#: ``model_mode: head``, or ``model_mode: finetune`` with each ``finetune_method``.
FULL_PATH_NOTES = {
    "head": "model_mode: head never tunes the encoder. With model_mode: finetune (the default) the full path tunes "
            "it every finetune_every labels and uses it only when it beats the head on held-out labels: on BBC News "
            "that raised margin's accuracy at 90 labels from 0.954 to 0.963, and it lowered the mean accuracy over "
            "the first 90 labels on no benchmark set.",
    "classifier": "The full path fine-tunes the encoder every finetune_every labels and uses it only when it beats "
                  "the head on held-out labels: on BBC News it raised margin's accuracy at 90 labels from 0.954 to "
                  "0.963; on reviews and emails it was mostly rejected, at no cost. There, finetune_method: setfit "
                  "did better: +4.1 points of accuracy at 90 labels on Rotten Tomatoes reviews (interval +0.2 to "
                  "+8.0) and +3.2 on SpamAssassin emails (+0.7 to +5.7), for 8 to 75 times the fine-tune's CPU time.",
    "setfit": "SetFit tunes the encoder on contrastive pairs of your labels every finetune_every labels, used only "
              "when it beats the head on held-out labels: +4.1 points of accuracy at 90 labels on Rotten Tomatoes "
              "reviews (interval +0.2 to +8.0), +3.2 on SpamAssassin emails (+0.7 to +5.7), +2.6 on a 3-class "
              "review set. On BBC News articles it gained only +0.6, less than finetune_method: classifier. A fit "
              "at 50 labels took 3 to 17 minutes on one CPU core and grows with the labels: give the full path a "
              "GPU or a spare core.",
}
NOT_BENCHMARKED = "{strategy} was not benchmarked under the realistic protocol; compare it with the default on your data."
COLD_START_OFF = ("The cold-start phase is off. Choosing the first labels by the cold-start ranking was the largest "
                  "gain measured: +4.6 points for margin on BBC News. Consider cold_start_phase: true.")
RARE = ("{classes} {verb} under {share:.0%} of your labels. balanced_margin gives every predicted class an equal "
        "share of each batch, so rare classes keep being asked about.")


def strategy_advice(
    strategy: str, label_counts: Mapping[str, int] | None, cold_start_phase: bool = True, task_type: str = "single_label",
    model_mode: str = ProjectSettings.model_mode, finetune_method: str = ProjectSettings.finetune_method,
) -> list[str]:
    """Lines for a project of ``task_type`` running ``strategy`` (and, single-label, the full path its
    ``model_mode`` and ``finetune_method`` give it) whose labels so far count ``label_counts`` per class."""
    if task_type in HONEST_BY_TASK_TYPE:
        notes = NOTES_BY_TASK_TYPE[task_type]
        lines = [HONEST_BY_TASK_TYPE[task_type], notes.get(strategy, NOT_BENCHMARKED.format(strategy=strategy))]
        return [*lines, *([COLD_START_OFF] if not cold_start_phase else []), CHECK_BY_TASK_TYPE[task_type]]
    lines = [HONEST]
    lines.append(STRATEGY_NOTES.get(strategy, NOT_BENCHMARKED.format(strategy=strategy)))
    lines.append(FULL_PATH_NOTES["head" if model_mode == "head" else finetune_method])
    if not cold_start_phase:
        lines.append(COLD_START_OFF)
    rare = rare_classes(label_counts or {})
    if rare and strategy != "balanced_margin":
        lines.append(RARE.format(classes=", ".join(rare), verb="holds" if len(rare) == 1 else "each hold",
                                 share=RARE_SHARE))
    lines.append(CHECK)
    return lines


def rare_classes(label_counts: Mapping[str, int]) -> list[str]:
    """Classes under ``RARE_SHARE`` of the labels, once there are enough labels to tell."""
    total = sum(label_counts.values())
    if total < MIN_LABELS_FOR_SHARES or len(label_counts) < 2:
        return []
    return [name for name, count in label_counts.items() if count / total < RARE_SHARE]
