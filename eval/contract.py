"""The one contract every evaluator keeps: it takes its target and returns ``Evaluation``s, each a JSON-ready
report with the primary metric it is judged by. It reports progress through ``Steps`` and never prints; the CLI
(or a test, or a notebook) decides how to show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class EvalError(Exception):
    """An evaluation that cannot run as asked. ``exit_code``: 2 for options that do not fit, 1 for missing data."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Evaluation:
    name: str  # what was evaluated: a tagging mode, a judged set, the fitted fusion
    metric: str  # the primary metric's name, e.g. "macro_f1_mean" or "ndcg@10"
    value: float | None  # its value (None when the report has no single number, as for the fit's sets)
    report: dict[str, Any]  # everything measured, JSON-ready (what --out writes)


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def update(self, completed: int, total: int | None = None) -> None: ...


class Steps(Protocol):
    """Where an evaluator says what it is doing: a task per stage, advanced as it goes; ``note`` for a line."""

    def task(self, description: str, total: int | None = None) -> Task: ...

    def note(self, text: str) -> None: ...
