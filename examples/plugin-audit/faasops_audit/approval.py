"""Whether the pull request a push merged approved deletes: the CI side of the no-deletes policy.

On a push to the main branch GitHub sends no pull request, so the ``allow-deletes`` label the
reviewers saw is not in the event. The workflow asks the API for the pull requests that
introduced the pushed commit (``gh api repos/OWNER/REPO/commits/SHA/pulls``) and pipes the answer
here; this prints ``1`` when a pull request *merged into that branch* carries the label, else
``0`` — which the workflow passes on as ``FAASOPS_ALLOW_DELETES`` to the plan that is saved and
to the apply of that saved plan.

Read at push time, in the run of the main branch's workflow, the label can't be forged by the
pull request's author the way anything its own run computed could: a pull request's run executes
the workflow file of that pull request.

    gh api "repos/$GITHUB_REPOSITORY/commits/$GITHUB_SHA/pulls" \\
      | python -m faasops_audit.approval --base main --label allow-deletes
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

DEFAULT_LABEL = "allow-deletes"


def deletes_approved(pulls: Any, base: str, label: str = DEFAULT_LABEL) -> bool:
    """Whether a pull request in ``pulls`` (the API's list) was merged into ``base`` with ``label``.

    Open or closed-unmerged pull requests that merely contain the commit don't count: only the
    one whose merge brought the commit onto ``base`` was approved for it."""
    if not isinstance(pulls, list):
        raise ValueError(f"expected the API's list of pull requests, got {type(pulls).__name__}")
    for pull in pulls:
        if not isinstance(pull, dict) or not pull.get("merged_at"):
            continue
        if (pull.get("base") or {}).get("ref") != base:
            continue
        if any(isinstance(tag, dict) and tag.get("name") == label for tag in pull.get("labels") or ()):
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faasops_audit.approval", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="The branch the push went to (main).")
    parser.add_argument("--label", default=DEFAULT_LABEL, help="The label that approves deletes.")
    parser.add_argument("pulls", nargs="?", default="-", help="The API's JSON (default: standard input).")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.pulls == "-" else open(args.pulls, encoding="utf-8").read()
    try:
        approved = deletes_approved(json.loads(text), args.base, args.label)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        print(f"faasops-audit: can't read the pull requests: {exc}", file=sys.stderr)
        return 1
    print("1" if approved else "0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
