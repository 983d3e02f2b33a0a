"""The active-learning backend for Label Studio; ARCHITECTURE.md walks through its packages.

Two entry points: ``backend.app`` (the HTTP process gunicorn serves) and ``backend.worker`` (the RQ worker).
"""
