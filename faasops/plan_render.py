"""Showing a plan: Terraform-like text, versioned JSON, and markdown for pull-request comments.

Renderers read the :class:`~faasops.plan.Plan` value only; the plan never imports this module.
"""

from __future__ import annotations

import json
from typing import Any

from faasops.plan import Action, FieldChange, Plan, ResourceChange

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
}
VERBS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
}
MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. The deployed functions match the manifests."
    s = plan.summary()
    return f"Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy."


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True)


def _field_line(f: FieldChange, action: Action) -> str:
    if f.sensitive:
        return f"{f.path}: (sensitive) changed"
    if action is Action.CREATE:
        return f"{f.path} = {_value(f.after)}"
    if action is Action.DELETE:
        return f"{f.path} = {_value(f.before)}"
    return f"{f.path}: {_value(f.before)} -> {_value(f.after)}"


def _change_lines(change: ResourceChange) -> list[str]:
    lines = [f"  {SYMBOLS[change.action]} {change.kind} {change.address} {VERBS[change.action]}"]
    lines += [f"      # {reason}" for reason in change.reasons]
    for f in change.fields:
        # Empty values of a new or removed object are noise.
        empty = f.after if change.action is not Action.DELETE else f.before
        if change.action in (Action.CREATE, Action.DELETE) and empty in (None, {}, []) and not f.sensitive:
            continue
        lines.append(f"      {_field_line(f, change.action)}")
    return lines


def render_text(plan: Plan) -> str:
    """The plan as a person reads it in a terminal or CI log."""
    out: list[str] = []
    if plan.has_changes:
        out.append("faasops will perform the following actions:")
        out.append("")
        for change in plan.actionable:
            out.extend(_change_lines(change))
            out.append("")
    for warning in plan.warnings:
        out.append(f"Warning: {warning}")
    if plan.warnings:
        out.append("")
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def render_json(plan: Plan) -> str:
    """The documented, versioned JSON form (see :mod:`faasops.plan`)."""
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True) + "\n"


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: summary first, then details in a collapsible block, truncated
    to ``limit`` characters with a note on how many resources were left out."""
    head = [f"### faasops plan: `{plan.project}`" + (f" ({plan.environment})" if plan.environment else "")]
    head.append("")
    head.append(f"**{summary_line(plan)}**")
    head.append("")
    if plan.has_changes:
        head.append("| action | kind | address |")
        head.append("|---|---|---|")
        rows = [f"| `{SYMBOLS[c.action]}` {c.action.value} | {c.kind} | `{c.address}` |" for c in plan.actionable]
        head.extend(rows[:50])
        if len(rows) > 50:
            head.append(f"| … | | {len(rows) - 50} more |")
        head.append("")
    for warning in plan.warnings:
        head.append(f"> ⚠️ {warning}")
    if plan.warnings:
        head.append("")
    if not plan.has_changes:
        return "\n".join(head) + "\n"
    body: list[str] = []
    omitted = 0
    budget = limit - sum(len(line) + 1 for line in head) - 200
    for change in plan.actionable:
        block = "\n".join(_change_lines(change)) + "\n"
        if budget - len(block) < 0:
            omitted += 1
            continue
        budget -= len(block)
        body.append(block)
    details = ["<details><summary>Details</summary>", "", "```diff"]
    details.extend(line.replace("  ~ ", "! ", 1) if line.startswith("  ~ ") else line.lstrip() for line in "".join(body).splitlines())
    details.append("```")
    if omitted:
        details.append("")
        details.append(f"_{omitted} more changes not shown: run `faasops plan` for the full plan._")
    details.append("</details>")
    return "\n".join(head + details) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
