"""Small helpers both dataset readers share: row lists in error messages, and an export task's answer."""
from __future__ import annotations


def rows_list(rows: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def first_result(task) -> list | None:
    """The first non-cancelled annotation's result (an empty list is an answer), None when there is none."""
    for annotation in task.get("annotations") or []:
        if not annotation.get("was_cancelled"):
            return annotation.get("result") or []
    return None
