"""faasops' Loki log source against the Loki test double, over real HTTP."""

from __future__ import annotations

import socket
import time
from itertools import islice

import pytest

from faasops.errors import FaasopsError, ProviderError
from faasops.plugins.loki import log_query, logql_string
from testkit.loki import NS, LokiDouble, parse_query
from loki_support import ELSEWHERE, HELLO, OTHER, WS, make_source


def ago(seconds: float) -> int:
    return time.time_ns() - int(seconds * NS)


def messages(records: list) -> list[str]:
    return [r.message for r in records]


def queries(loki: LokiDouble) -> list[dict[str, list[str]]]:
    """The parameters of every query_range the double received, oldest first."""
    return [r.params for r in loki.requests if r.path == "/loki/api/v1/query_range"]


def test_reads_a_function_newest_first_by_its_function_id_label(loki: LokiDouble) -> None:
    loki.push(HELLO, [(ago(30), "hello 1"), (ago(20), "hello 2"), (ago(10), "hello 3")])
    loki.push(OTHER, [(ago(15), "other")])
    loki.push(ELSEWHERE, [(ago(5), "shop's hello")])

    records = make_source(loki).read(WS, "hello", limit=2)

    assert messages(records) == ["hello 3", "hello 2"]
    assert queries(loki)[0]["query"] == ['{function_id="demo.hello"}']
    assert queries(loki)[0]["direction"] == ["backward"]
    first = records[0]
    assert (first.workspace, first.function, first.function_id) == ("demo", "hello", "demo.hello")
    assert first.labels["pod"] == HELLO["pod"]
    assert abs(first.time - time.time() + 10) < 1


def test_reads_a_workspace_across_its_functions_by_the_workspace_id_label(loki: LokiDouble) -> None:
    loki.push(HELLO, [(ago(30), "hello 1"), (ago(10), "hello 2")])
    loki.push(OTHER, [(ago(20), "other 1"), (ago(5), "other 2")])
    loki.push(ELSEWHERE, [(ago(1), "not this workspace")])

    records = make_source(loki).read(WS, None, limit=3)

    assert [(r.function, r.message) for r in records] == [("other", "other 2"), ("hello", "hello 2"),
                                                           ("other", "other 1")]
    assert queries(loki)[0]["query"] == ['{workspace_id="demo"}']


def test_since_limits_the_window_and_the_default_window_is_one_hour(loki: LokiDouble) -> None:
    loki.push(HELLO, [(ago(2 * 3600), "two hours ago"), (ago(1800), "half an hour ago"), (ago(60), "a minute ago")])
    source = make_source(loki)

    assert messages(source.read(WS, "hello", limit=10)) == ["a minute ago", "half an hour ago"]
    assert messages(source.read(WS, "hello", limit=10, since=time.time() - 300)) == ["a minute ago"]
    assert messages(make_source(loki, default_since="3h").read(WS, "hello", limit=10)) == [
        "a minute ago", "half an hour ago", "two hours ago"]


@pytest.mark.parametrize("grep", ['"quoted" |= x', '"} or {job=~".+"} |= "', "back\\slash", "tab\there", "`tick`",
                                  "ünïcode ✓"])
def test_grep_is_a_literal_line_filter_whatever_it_contains(loki: LokiDouble, grep: str) -> None:
    loki.push(HELLO, [(ago(3), f"before {grep} after"), (ago(2), "unrelated"), (ago(1), grep[:-1] + "<cut>")])
    loki.push(ELSEWHERE, [(ago(1), f"other workspace {grep}")])

    records = make_source(loki).read(WS, "hello", limit=10, grep=grep)

    assert messages(records) == [f"before {grep} after"]
    # The query Loki received selects on the function alone, with one line filter equal to grep.
    sent = parse_query(queries(loki)[0]["query"][0])
    assert [(m.name, m.op, m.value) for m in sent.matchers] == [("function_id", "=", "demo.hello")]
    assert [(f.op, f.value) for f in sent.filters] == [("|=", grep)]


def test_names_are_escaped_in_the_selector_too() -> None:
    assert log_query('a"b', None, None) == '{workspace_id="a\\"b"}'
    assert logql_string("line\nbreak\x01") == '"line\\nbreak\\x01"'


def test_a_large_limit_is_read_in_pages_without_losing_or_repeating_entries_at_page_boundaries(
        loki: LokiDouble) -> None:
    stamp = ago(60)
    # Nine entries in three nanoseconds, across two streams: pages of 4 split nanoseconds.
    loki.push(HELLO, [(stamp + (i // 3), f"hello {i}") for i in range(6)])
    loki.push({**HELLO, "pod": "hello-5d8f7c9b6-zzzzz"}, [(stamp + i, f"second pod {i}") for i in range(3)])
    everything = {"hello 0", "hello 1", "hello 2", "hello 3", "hello 4", "hello 5",
                  "second pod 0", "second pod 1", "second pod 2"}
    source = make_source(loki, max_entries=4)

    all_nine = source.read(WS, "hello", limit=50)
    newest_eight = source.read(WS, "hello", limit=8)

    assert sorted(messages(all_nine)) == sorted(everything)
    assert len(newest_eight) == 8 and len({r.id for r in newest_eight}) == 8
    # Only one of the four entries of the oldest nanosecond is left out.
    assert everything - set(messages(newest_eight)) <= {"hello 0", "hello 1", "hello 2", "second pod 0"}
    for records in (all_nine, newest_eight):
        assert [r.time for r in records] == sorted((r.time for r in records), reverse=True)
    assert all(int(params["limit"][0]) <= 4 for params in queries(loki))


def test_follow_continues_where_the_read_stopped_each_entry_once(loki: LokiDouble) -> None:
    base = ago(20)
    loki.push(HELLO, [(base, "old 1"), (base + NS, "old 2")])
    source = make_source(loki, poll_interval=0.05)
    assert messages(source.read(WS, "hello", limit=1)) == ["old 2"]

    # Written between the read and the follow: a new entry, one sharing the newest shown
    # nanosecond (another line, and the same line from another pod), and an exact duplicate.
    loki.push(HELLO, [(base + NS, "same nanosecond, other line"), (base + NS, "old 2"), (base + 2 * NS, "new")])
    loki.push({**HELLO, "pod": "hello-5d8f7c9b6-other"}, [(base + NS, "old 2")])
    follow = source.follow(WS, "hello")
    first = list(islice(follow, 3))

    assert sorted((r.message, r.labels["pod"]) for r in first) == sorted([
        ("same nanosecond, other line", HELLO["pod"]), ("old 2", "hello-5d8f7c9b6-other"), ("new", HELLO["pod"])])
    assert [r.time for r in first] == sorted(r.time for r in first)

    # A late entry (older than the newest shown, within follow_overlap) shows once; nothing
    # shown before comes again.
    loki.push(HELLO, [(base + NS + 500, "late"), (base + 3 * NS, "sentinel")])
    assert messages(islice(follow, 2)) == ["late", "sentinel"]
    loki.push(HELLO, [(base + 4 * NS, "last")])
    assert messages(islice(follow, 1)) == ["last"]
    assert all(params["direction"] == ["forward"] for params in queries(loki)[2:])


def test_follow_without_a_read_starts_now(loki: LokiDouble) -> None:
    loki.push(HELLO, [(ago(2), "already there, wanted")])
    source = make_source(loki, poll_interval=0.05)
    follow = source.follow(WS, "hello", grep="wanted")

    loki.push(HELLO, [(ago(0), "unrelated"), (ago(0) + 1, "wanted")])

    assert messages(islice(follow, 1)) == ["wanted"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_loki_is_a_one_line_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ProviderError) as error:
        make_source(url, timeout=2).read(WS, "hello", limit=5)

    assert str(error.value).startswith(f"cannot reach Loki at {url} (")
    assert "\n" not in str(error.value)


def test_a_rejected_query_shows_lokis_message(loki: LokiDouble) -> None:
    with pytest.raises(ProviderError) as error:
        make_source(loki, max_entries=6000).read(WS, "hello", limit=6000)

    assert str(error.value) == ('Loki rejected the query {function_id="demo.hello"}: max entries limit per query '
                                "exceeded, limit > max_entries_limit_per_query (6000 > 5000)")


def test_multi_tenant_loki_needs_org_id_and_then_reads_that_tenant() -> None:
    with LokiDouble(auth_enabled=True) as loki:
        loki.push(HELLO, [(ago(1), "team a")], tenant="team-a")

        with pytest.raises(ProviderError, match="is multi-tenant and needs a tenant .* set `org_id`"):
            make_source(loki).read(WS, "hello", limit=5)
        assert messages(make_source(loki, org_id="team-a").read(WS, "hello", limit=5)) == ["team a"]
        assert make_source(loki, org_id="team-b").read(WS, "hello", limit=5) == []


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with LokiDouble(bearer_token="t0ken") as bearer, LokiDouble(basic_auth=("12345", "pa55")) as basic:
        bearer.push(HELLO, [(ago(1), "bearer")])
        basic.push(HELLO, [(ago(1), "basic")])
        monkeypatch.setenv("LOKI_TOKEN", "t0ken")
        monkeypatch.setenv("LOKI_PASSWORD", "pa55")
        monkeypatch.setenv("WRONG_TOKEN", "nope")

        assert messages(make_source(bearer, token_env="LOKI_TOKEN").read(WS, "hello", limit=1)) == ["bearer"]
        assert messages(make_source(basic, username="12345", password_env="LOKI_PASSWORD")
                        .read(WS, "hello", limit=1)) == ["basic"]
        with pytest.raises(ProviderError, match="refused the credentials \\(401") as refused:
            make_source(bearer, token_env="WRONG_TOKEN").read(WS, "hello", limit=1)
        assert "nope" not in str(refused.value)


def test_forbidden_rate_limited_and_failing_answers_are_one_line_errors(loki: LokiDouble) -> None:
    source = make_source(loki, org_id="team-a")
    cases = [(403, "denied access to tenant 'team-a' (403 Forbidden: no way at all)"),
             (429, "is rate-limiting queries (429: busy)"), (500, "failed to answer /loki/api/v1/query_range (500")]
    for status, message in cases:
        loki.fail_next(status, "no way\nat all" if status == 403 else "busy")
        with pytest.raises(ProviderError) as error:
            source.read(WS, "hello", limit=1)
        assert message in str(error.value)
        assert "\n" not in str(error.value)


def test_a_passing_gateway_error_is_retried(loki: LokiDouble) -> None:
    loki.push(HELLO, [(ago(1), "served after a 503")])
    loki.fail_next(503, "upstream restarting")

    assert messages(make_source(loki).read(WS, "hello", limit=1)) == ["served after a 503"]


def test_a_wrong_url_says_what_is_wrong(loki: LokiDouble) -> None:
    with pytest.raises(ProviderError, match="has no /loki/api/v1/query_range \\(404.*base URL"):
        make_source(f"{loki.url}/loki/api/v1").read(WS, "hello", limit=1)
    loki.fail_next(200, "<html>a login page</html>")
    with pytest.raises(ProviderError, match="not Loki's JSON"):
        make_source(loki).read(WS, "hello", limit=1)


@pytest.mark.parametrize("options, message", [
    ({"token": "abc"}, "remove 'token': faasops never reads credentials from faas.yaml"),
    ({"password": "abc", "username": "u"}, "remove 'password'"),
    ({"token_env": "MISSING_LOKI_TOKEN_VARIABLE"}, "MISSING_LOKI_TOKEN_VARIABLE (named by `token_env`) is not set"),
    ({"username": "u"}, "needs both `username` and `password_env`"),
    ({"colour": "blue"}, "providers.logs.colour: unknown option 'colour'"),
    ({"timeout": "fast"}, "providers.logs.timeout: expected a number, got the string 'fast'"),
    ({"default_since": "forever"}, "invalid duration 'forever'"),
])
def test_options_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(FaasopsError, match=message.replace("(", "\\(").replace(")", "\\)")):
        make_source("http://loki:3100", **options)


def test_url_is_required_and_must_not_carry_credentials() -> None:
    with pytest.raises(ProviderError, match="providers.logs.url: must not be empty"):
        make_source("")
    with pytest.raises(ProviderError, match="remove the credentials from `url`"):
        make_source("http://user:secret@loki:3100")
