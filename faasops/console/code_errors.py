"""The API's code validation messages (``app.py:3:5: Python syntax error: …``, one a line) read
back into places, so the editor can show each one at its line."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LOCATED = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<column>\d+):?\s*(?P<message>.*)$")


@dataclass(frozen=True)
class CodeProblem:
    """One message; ``line``/``column`` are None when the message names no place."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None


def code_problems(detail: str) -> list[CodeProblem]:
    """Each line of an API error ``detail``, located when it starts with ``file:line:col``."""
    problems = []
    for text in detail.splitlines() or [detail]:
        found = _LOCATED.match(text.strip())
        if found:
            problems.append(CodeProblem(found["message"], found["file"], int(found["line"]), int(found["column"])))
        elif text.strip():
            problems.append(CodeProblem(text.strip()))
    return problems


def numbered_lines(code: str, problems: list[CodeProblem], file: str) -> list[tuple[int, str, list[CodeProblem]]]:
    """``code``'s lines (1-based) with the problems located on each (those in ``file``); a
    problem past the last line is shown on the last."""
    lines = code.split("\n") or [""]
    placed: dict[int, list[CodeProblem]] = {}
    for problem in problems:
        if problem.line is not None and (problem.file is None or problem.file == file):
            placed.setdefault(min(max(problem.line, 1), len(lines)), []).append(problem)
    return [(number, text, placed.get(number, [])) for number, text in enumerate(lines, start=1)]
