"""How long work reports its progress: ``progress(stage, done, total)``, called as it goes.

A job passes its ``backend.jobs.context.JobProgress`` (the job's meta for ``/status``, and the worker log); the
simulation passes nothing. Defined here, not beside the encoder, so that code which only forwards a progress
callback needs no model import.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[str, int, int], None]
