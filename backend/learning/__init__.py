"""The active-learning rules, free of RQ and HTTP: the phase rule, the one active-learning step, scoring,
evaluation, the stopping signal, suggestion acceptance and the full path's contest. The worker and
``al-simulate`` both call them."""
