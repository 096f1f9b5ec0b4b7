"""Renderers read the plan value: text, JSON and markdown agree and stay within bounds."""

from __future__ import annotations

import json

from faasops.plan import Action, FieldChange, Plan, PlanOptions, ResourceChange, Selection
from faasops.plan_render import render_json, render_markdown, render_text


def big_plan(n: int) -> Plan:
    changes = tuple(
        ResourceChange("function", f"ws{i % 10}/fn{i}", Action.UPDATE,
                       (FieldChange("env.LEVEL", "info", "debug"), FieldChange("secrets", None, None, sensitive=True)))
        for i in range(n)
    )
    return Plan("big", "prod", "2026-11-26T00:00:00Z", 7, changes, ("function ws1/old is protected",))


def test_markdown_puts_the_summary_first_and_truncates_long_plans() -> None:
    text = render_markdown(big_plan(3000))
    assert len(text) <= 60_000
    assert text.index("Plan: 0 to add, 3000 to change, 0 to destroy.") < text.index("<details>")
    assert "more changes not shown: run `faasops plan` for the full plan." in text
    assert "| … | | 2950 more |" in text
    assert "⚠️ function ws1/old is protected" in text


def test_short_markdown_plan_is_complete() -> None:
    text = render_markdown(big_plan(3))
    assert "not shown" not in text
    assert text.count("will be updated in place") == 3
    assert "secrets: (sensitive) changed" in text


def test_json_round_trips_the_plan_value() -> None:
    plan = Plan("p", None, "t", 1, big_plan(2).changes,
                options=PlanOptions(prune=True, selection=Selection(("ws0",), (), ("ws0/fn0",))))
    data = json.loads(render_json(plan))
    assert data["summary"] == {"add": 0, "change": 2, "destroy": 0}
    assert Plan.from_dict(data) == plan


def test_text_uses_terraform_symbols_and_summary() -> None:
    plan = Plan("p", None, "t", 1, (
        ResourceChange("function", "a/create", Action.CREATE, (FieldChange("env.A", None, "1"),)),
        ResourceChange("function", "a/update", Action.UPDATE, (FieldChange("replicas", 1, 2),)),
        ResourceChange("function", "a/replace", Action.REPLACE, (), ("namespace moves",)),
        ResourceChange("function", "a/delete", Action.DELETE),
        ResourceChange("function", "a/same", Action.NOOP),
    ))
    text = render_text(plan)
    assert "  + function a/create will be created\n      env.A = \"1\"" in text
    assert "  ~ function a/update will be updated in place\n      replicas: 1 -> 2" in text
    assert "  -/+ function a/replace must be replaced\n      # namespace moves" in text
    assert "  - function a/delete will be destroyed" in text
    assert "a/same" not in text
    assert text.rstrip().endswith("Plan: 2 to add, 1 to change, 2 to destroy.")
