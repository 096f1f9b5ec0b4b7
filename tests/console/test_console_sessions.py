"""The console's session store on a fake clock: sessions end when idle, when too old, and on
sign-out; the store keeps no session id, only its hash."""

from __future__ import annotations

from faasops.api.access import Principal
from faasops.console.sessions import IDLE_TIMEOUT_S, MAX_AGE_S, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_being_idle_and_after_its_maximum_age() -> None:
    clock = Clock()
    store = SessionStore(clock)
    idle_id, _ = store.create(Principal("a", frozenset({"read:demo"})))
    busy_id, busy = store.create(Principal("b", frozenset({"admin"})))

    steps = int(MAX_AGE_S // (IDLE_TIMEOUT_S / 2))
    for _ in range(steps):
        clock.now += IDLE_TIMEOUT_S / 2
        assert store.get(busy_id) is busy  # used within the idle timeout: still there
    assert store.get(idle_id) is None
    clock.now += IDLE_TIMEOUT_S / 2
    assert store.get(busy_id) is None  # past its maximum age however busy


def test_sign_out_ends_only_that_session_and_ids_are_not_kept() -> None:
    store = SessionStore(Clock())
    first_id, first = store.create(Principal("a"))
    second_id, _ = store.create(Principal("a"))
    store.end(second_id)
    assert store.get(second_id) is None and store.get(first_id) is first
    assert first_id not in repr(store.__dict__) and first.csrf_token != first_id
