"""Shared vocabulary every other package speaks: settings, labels and spans, exceptions, Redis key names,
metrics and small on-disk JSON documents. Imports nothing else of the backend."""
