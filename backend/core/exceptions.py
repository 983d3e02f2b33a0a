"""Every exception the backend raises on purpose, in one module (as rq keeps its ``exceptions.py``).

Grouped by who answers them:
- refused input, answered at once and never retried: ``SettingsError``, ``UnsupportedLabelConfig``,
  ``InputError`` (``al-simulate``), and the HTTP answers ``BadRequest`` (400), ``NotConnectedHere`` (404) and
  ``TooLarge`` (413);
- a job that has nothing to do, or may not do it, ended as ``skipped`` or ``refused`` instead of retried:
  ``Skip``, ``StrategyUnavailable``, ``NotConnected``;
- a job that must stop before its next write: ``LockLost``.
"""
from __future__ import annotations


class SettingsError(ValueError):
    """A setting has a value the backend cannot use; the message names it and its valid values."""


class UnsupportedLabelConfig(ValueError):
    """The label config is not one Text plus one Choices or Labels control."""


class InputError(ValueError):
    """``al-simulate``'s input or options cannot be simulated; the message says why, in one line."""


class BadRequest(Exception):
    """The request is malformed or asks for something unsupported; answered with 400 and the message."""


class NotConnectedHere(Exception):
    """A request for a project that never connected this backend; answered with 404, nothing enqueued."""


class TooLarge(Exception):
    """A request over a documented limit; answered with 413 and the message."""


class Skip(Exception):
    """The job cannot do anything useful now, and retrying will not help."""


class StrategyUnavailable(ValueError):
    """The strategy needs outputs this model or this stage of labeling cannot provide."""


class NotConnected(Exception):
    """Label Studio does not confirm that this project connected this backend; nothing may be done to it."""


class LockLost(RuntimeError):
    """The project lock expired, vanished or changed hands while held; another job may own the project now."""
