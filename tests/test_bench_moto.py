"""The benchmark's moto (bench/scale_moto.py) answers Query exactly as stock moto does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_patched_moto_answers_every_query_as_stock_moto_does() -> None:
    finished = subprocess.run([sys.executable, str(HERE / "bench_moto_answers.py")],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-4000:]
    answers = json.loads(finished.stdout)
    stock, patched = answers["stock"], answers["patched"]
    assert len(stock) == 10
    # The queries return something to compare: pages, items, a last page of another order.
    assert [len(page["Items"]) for page in stock[1]] == [7, 7, 6]
    assert [page["Items"][0]["sk"]["S"] for page in stock[2][:2]] == ["WS#b#FN#f-059", "WS#b#FN#f-044"]
    assert stock[7] == [{"Items": [], "Count": 0, "ScannedCount": 0}]
    for query, (want, got) in enumerate(zip(stock, patched, strict=True)):
        assert got == want, f"query {query}"
