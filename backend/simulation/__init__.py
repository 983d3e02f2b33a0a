"""Offline active-learning simulation: replay labeling on an already labeled dataset.

    al-simulate data.csv --strategies margin,random --seeds 0,1,2 --out runs/demo

For each (strategy, seed) the labels are hidden and revealed batch by batch, exactly as the worker would
ask for them: every round trains with ``backend.models.families.build_classifier`` and ranks the pool with
``backend.learning.scoring.collect_outputs`` plus the registered strategy (the worker's code; no second
implementation). Per round it records held-out test metrics, so strategies can be compared by how many
labels they need.

Inputs: a CSV / TSV / JSONL / JSON table with a text and a label column, or a Label Studio JSON export
(tasks with ``data`` and ``annotations[].result``). NER: a two-column CoNLL file, or an export read with a
``<Labels>`` config; its rounds train ``backend.models.token_head.TokenHead`` and report entity F1 for accuracy.

Outputs in ``--out``: ``rounds.csv``, ``summary.csv``, ``summary.md`` and ``learning_curve.png``.


The package, one idea per module: ``dataset`` reads the input (``ner_dataset`` NER input), ``protocol`` fixes
splits, initial sets and batches, ``runner`` plays the rounds (``ner`` NER rounds), ``summary`` turns rounds into
AUC and labels-to-reach tables, ``report`` writes the files and plots, ``cli`` is ``al-simulate``.
"""
