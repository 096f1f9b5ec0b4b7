"""Build feedback: while a step runs, CI logs get a line every 5 s and a terminal's status line
shows the step's elapsed time, with what the provider says it is doing (fake clock; the real
ticker thread is exercised by tests/test_hot_swap.py through `faasops apply`)."""

from __future__ import annotations

import io
import threading
import time

from faasops.progress import PlainReporter, TerminalReporter, report_activity


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def plain_lines(stream: io.StringIO) -> list[str]:
    """The lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]


def test_ci_log_says_every_5_s_that_a_build_still_runs_and_what_it_does() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = PlainReporter(out, clock=clock)
    reporter.start(1)
    reporter.step("demo/hello", "build", "running")
    for _ in range(4):  # ticks every second: nothing to say before 5 s
        clock.now += 1
        reporter.tick()
    report_activity("demo/hello", "componentize-py")
    for _ in range(12):
        clock.now += 1
        reporter.tick()
    reporter.step("demo/hello", "build", "completed", "sha256:abc")
    clock.now += 10
    reporter.tick()
    reporter.finish(None)

    assert plain_lines(out) == [
        "applying 1 change(s)",
        "building demo/hello (componentize-py) … 5 s",
        "building demo/hello (componentize-py) … 10 s",
        "building demo/hello (componentize-py) … 15 s",
        "demo/hello: build completed — sha256:abc",
    ]


def test_a_finished_step_forgets_its_activity() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = PlainReporter(out, clock=clock)
    reporter.step("demo/hola", "build", "running")
    report_activity("demo/hola", "installing dependencies")
    reporter.step("demo/hola", "build", "completed")
    reporter.step("demo/hola", "push", "running")
    clock.now += 5
    reporter.tick()
    reporter.finish(None)
    assert plain_lines(out)[-1] == "pushing demo/hola … 5 s"


def test_terminal_status_line_shows_each_running_step_s_elapsed_time_at_every_tick() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = TerminalReporter(out, clock=clock)
    reporter.start(2)
    reporter.step("demo/bonjour", "build", "running")
    report_activity("demo/bonjour", "componentize-py")
    clock.now += 3
    reporter.tick()
    clock.now += 1
    reporter.tick()
    reporter.finish(None)

    redraws = out.getvalue().split("\r\033[K")
    assert redraws[-3].endswith("0/2 3s demo/bonjour build (componentize-py) 3s")
    assert redraws[-2].endswith("0/2 4s demo/bonjour build (componentize-py) 4s")
    assert redraws[-1] == ""  # the status line is cleared at the end


def test_the_ticker_thread_runs_only_while_a_step_runs() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, interval_s=0.05)
    reporter.step("demo/hallo", "build", "running")
    deadline = time.monotonic() + 30
    while "building demo/hallo … 0.05 s" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "building demo/hallo … 0.05 s" in out.getvalue()
    reporter.step("demo/hallo", "build", "completed")
    while any(t.name == "faasops-progress" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "faasops-progress" for t in threading.enumerate())
