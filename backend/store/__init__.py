"""A project's state on disk under ``MODEL_DIR/project-<id>/``: model versions and their rankings, the ledger
of what went to Label Studio, the version history, the setup record, the encoder registry and the caches of
embeddings and token vectors."""
