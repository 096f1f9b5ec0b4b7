"""The Loki test double against Loki's documented HTTP API (loki-http-api.md) and LogQL rules.

Every client test of faasops' Loki source trusts this double, so its own behaviour is pinned
here: response shapes, limit and ordering semantics, time parameters, LogQL matchers and line
filters, error texts, tenancy and ingestion rules.
"""

from __future__ import annotations

import gzip
import json
import time

import pytest

from testkit.loki import ERR_EMPTY_COMPATIBLE, ERR_INSTANT_LOG_QUERY, NS, LokiDouble, LokiPushError
from loki_support import call, lines_of

T0 = (time.time_ns() // NS - 600) * NS  # a whole second ten minutes ago: inside every default window


def push_three_streams(loki: LokiDouble) -> None:
    """Three streams whose entries interleave in time: a0 b0 c0 a1 b1 c1 … one ms apart."""
    for index, name in enumerate("abc"):
        loki.push({"job": "test", "stream_name": name},
                  [(T0 + (3 * i + index) * 1_000_000, f"{name}{i}") for i in range(4)])


def query_range(loki: LokiDouble, query: str, **params: object) -> tuple[int, object]:
    status, _, body = call(loki, "/loki/api/v1/query_range",
                           {"query": query, "start": str(T0 - NS), "end": str(T0 + 60 * NS), **params})
    return status, body


def test_push_answers_204_and_query_range_returns_the_documented_shape(loki: LokiDouble) -> None:
    body = json.dumps({"streams": [{"stream": {"job": "test"}, "values": [[str(T0), "fizzbuzz"]]}]}).encode()
    status, _, text = call(loki, "/loki/api/v1/push", method="POST", body=body,
                           headers={"Content-Type": "application/json"})
    assert (status, text) == (204, "")

    status, payload = query_range(loki, '{job="test"}')

    assert status == 200
    assert payload["status"] == "success"
    assert payload["data"]["resultType"] == "streams"
    assert payload["data"]["result"] == [{"stream": {"job": "test", "service_name": "test"},
                                          "values": [[str(T0), "fizzbuzz"]]}]
    assert payload["data"]["stats"]["summary"]["totalEntriesReturned"] == 1


def test_backward_is_newest_first_and_the_limit_applies_across_streams_after_merging(loki: LokiDouble) -> None:
    push_three_streams(loki)

    _, payload = query_range(loki, '{job="test"}', limit="4")

    # The newest four of all streams (c3 b3 a3 c2), each stream's values newest first.
    assert lines_of(payload) == ["c3", "b3", "a3", "c2"]
    assert {s["stream"]["stream_name"]: [v[1] for v in s["values"]] for s in payload["data"]["result"]} == {
        "a": ["a3"], "b": ["b3"], "c": ["c3", "c2"]}
    # Streams come sorted by their label set.
    assert [s["stream"]["stream_name"] for s in payload["data"]["result"]] == ["a", "b", "c"]


def test_forward_is_oldest_first_with_the_same_limit_rule(loki: LokiDouble) -> None:
    push_three_streams(loki)

    _, payload = query_range(loki, '{job="test"}', limit="4", direction="forward")

    assert lines_of(payload, "forward") == ["a0", "b0", "c0", "a1"]
    for stream in payload["data"]["result"]:
        stamps = [int(ts) for ts, _ in stream["values"]]
        assert stamps == sorted(stamps)


def test_default_limit_is_100_and_direction_defaults_to_backward(loki: LokiDouble) -> None:
    loki.push({"job": "test"}, [(T0 + i * 1000, f"line {i}") for i in range(150)])

    _, payload = query_range(loki, '{job="test"}')

    values = payload["data"]["result"][0]["values"]
    assert len(values) == 100
    assert values[0][1] == "line 149"


def test_start_is_inclusive_and_end_is_exclusive(loki: LokiDouble) -> None:
    loki.push({"job": "test"}, [(T0, "at start"), (T0 + NS, "at end")])

    _, payload = query_range(loki, '{job="test"}', start=str(T0), end=str(T0 + NS))

    assert lines_of(payload) == ["at start"]


@pytest.mark.parametrize("start, end", [
    (str(T0), str(T0 + 2 * NS)),                                            # nanoseconds
    (str(T0 // NS), str(T0 // NS + 2)),                                     # 10 digits: seconds
    (f"{T0 / NS:.3f}", f"{T0 / NS + 2:.3f}"),                               # float seconds
    (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 // NS)),
     time.strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00", time.gmtime(T0 // NS + 2))),  # RFC3339(Nano)
])
def test_every_documented_timestamp_format_selects_the_same_window(loki: LokiDouble, start: str, end: str) -> None:
    loki.push({"job": "test"}, [(T0 - NS, "before"), (T0, "first"), (T0 + NS, "second"), (T0 + 2 * NS, "after")])

    _, payload = query_range(loki, '{job="test"}', start=start, end=end)

    assert lines_of(payload) == ["second", "first"]


def test_since_sets_start_relative_to_end(loki: LokiDouble) -> None:
    loki.push({"job": "test"}, [(T0 - 120 * NS, "two minutes before"), (T0 - 30 * NS, "half a minute before")])

    status, _, payload = call(loki, "/loki/api/v1/query_range",
                              {"query": '{job="test"}', "end": str(T0), "since": "1m"})

    assert status == 200
    assert lines_of(payload) == ["half a minute before"]


@pytest.mark.parametrize("params, message", [
    ({"limit": "0"}, "limit must be a positive value"),
    ({"limit": "5001"}, "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"),
    ({"direction": "sideways"}, "invalid direction 'sideways'"),
    ({"start": str(T0 + NS), "end": str(T0)}, "end timestamp must not be before or equal to start time"),
    ({"start": "yesterday"}, "could not parse 'start' parameter"),
    ({"step": "0"}, "zero or negative query resolution step widths are not accepted"),
    ({"step": "1ms"}, "exceeded maximum resolution of 11,000 points per time series"),
])
def test_bad_parameters_are_400_with_lokis_plain_text_message(loki: LokiDouble, params: dict[str, str],
                                                              message: str) -> None:
    status, kind, text = call(loki, "/loki/api/v1/query_range",
                              {"query": '{job="test"}', "start": str(T0 - NS), "end": str(T0 + 60 * NS), **params})

    assert status == 400
    assert kind.startswith("text/plain")
    assert message in text


@pytest.mark.parametrize("selector, expected", [
    ('{job="test", app="hello"}', ["hello-1", "hello-0"]),
    ('{job="test", app!="hello"}', ["world-1", "help-0", "bare-0"]),
    ('{job="test", app=~"hel.*"}', ["hello-1", "help-0", "hello-0"]),
    ('{job="test", app=~"hel"}', []),  # regex matchers are fully anchored
    ('{job="test", app!~"hel.*"}', ["world-1", "bare-0"]),
    ('{job="test", app=""}', ["bare-0"]),  # a missing label reads as ""
    ('{app=~".+"}', ["world-1", "hello-1", "help-0", "hello-0"]),
])
def test_label_matchers(loki: LokiDouble, selector: str, expected: list[str]) -> None:
    loki.push({"job": "test", "app": "hello"}, [(T0, "hello-0"), (T0 + 4 * NS, "hello-1")])
    loki.push({"job": "test", "app": "help"}, [(T0 + NS, "help-0")])
    loki.push({"job": "test", "app": "world"}, [(T0 + 5 * NS, "world-1")])
    loki.push({"job": "test"}, [(T0 - NS // 2, "bare-0")])

    _, payload = query_range(loki, selector)

    assert lines_of(payload) == expected


@pytest.mark.parametrize("query, expected", [
    ('{job="test"} |= "error"', ["error: disk", "Error and error"]),
    ('{job="test"} != "error"', ["ok", "ERROR upper", 'say "quoted" |= x']),
    ('{job="test"} |~ "(?i)error"', ["error: disk", "ERROR upper", "Error and error"]),
    ('{job="test"} !~ "^E"', ["ok", "error: disk", 'say "quoted" |= x']),
    ('{job="test"} |= "error" != "disk"', ["Error and error"]),
    ('{job="test"} |= `error:`', ["error: disk"]),
    ('{job="test"} |= "\\"quoted\\" |= x"', ['say "quoted" |= x']),
])
def test_line_filters_chain_and_strings_are_go_strings(loki: LokiDouble, query: str, expected: list[str]) -> None:
    loki.push({"job": "test"}, [(T0, "Error and error"), (T0 + NS, "ERROR upper"), (T0 + 2 * NS, "error: disk"),
                                (T0 + 3 * NS, "ok"), (T0 - NS, 'say "quoted" |= x')])

    status, payload = query_range(loki, query)

    assert status == 200, payload
    assert lines_of(payload) == expected


@pytest.mark.parametrize("query, message", [
    ('{job="test"', "parse error at line 1, col 12: syntax error: unexpected $end"),
    ("{job=test}", "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"),
    ('{job="a\\q"}', "parse error at line 1, col 8: invalid char escape"),
    ('{job=~"("}', "parse error at line 1, col 7: error parsing regexp"),
    ("", "parse error at line 1, col 1: syntax error: unexpected $end"),
])
def test_parse_errors_are_400_with_lokis_error_shape(loki: LokiDouble, query: str, message: str) -> None:
    status, text = query_range(loki, query)

    assert status == 400
    assert text.startswith(message)


@pytest.mark.parametrize("selector", ["{}", '{job!="x"}', '{job=~".*"}', '{job=""}'])
def test_a_selector_that_matches_the_empty_value_everywhere_is_refused(loki: LokiDouble, selector: str) -> None:
    status, text = query_range(loki, selector)

    assert (status, text) == (400, f"parse error : {ERR_EMPTY_COMPATIBLE}")


@pytest.mark.parametrize("query", ['sum(rate({job="test"}[5m]))', '{job="test"} | json', '{job="test"} | logfmt'])
def test_what_the_double_does_not_evaluate_is_refused_not_answered_wrongly(loki: LokiDouble, query: str) -> None:
    status, text = query_range(loki, query)

    assert status == 400
    assert "not supported by the Loki test double" in text


def test_instant_queries_refuse_log_queries_as_loki_does(loki: LokiDouble) -> None:
    status, _, text = call(loki, "/loki/api/v1/query", {"query": '{job="test"}'})

    assert (status, text) == (400, ERR_INSTANT_LOG_QUERY)


def test_query_range_accepts_form_encoded_posts(loki: LokiDouble) -> None:
    loki.push({"job": "test"}, [(T0, "posted")])

    status, _, payload = call(loki, "/loki/api/v1/query_range", method="POST",
                              params={"query": '{job="test"}', "start": str(T0), "end": str(T0 + 1)})

    assert status == 200
    assert lines_of(payload) == ["posted"]


def test_labels_label_values_and_series(loki: LokiDouble) -> None:
    now = time.time()
    loki.push({"job": "api", "app": "hello"}, [(now - 60, "x")])
    loki.push({"job": "api", "app": "world"}, [(now - 30, "y")])
    loki.push({"job": "db", "role": "primary"}, [(now - 7 * 3600, "old: outside the default 6 h")])

    _, _, labels = call(loki, "/loki/api/v1/labels")
    _, _, values = call(loki, "/loki/api/v1/label/app/values")
    _, _, scoped = call(loki, "/loki/api/v1/labels", {"query": '{app="world"}'})
    _, _, series = call(loki, "/loki/api/v1/series", [("match[]", '{app="hello"}'), ("match[]", '{app="world"}')])

    assert labels == {"status": "success", "data": ["app", "job", "service_name"]}
    assert values == {"status": "success", "data": ["hello", "world"]}
    assert scoped["data"] == ["app", "job", "service_name"]
    assert series == {"status": "success", "data": [
        {"app": "hello", "job": "api", "service_name": "hello"},
        {"app": "world", "job": "api", "service_name": "world"},
    ]}


def test_label_responses_omit_data_when_empty_and_series_needs_a_matcher(loki: LokiDouble) -> None:
    assert call(loki, "/loki/api/v1/label/nothing/values")[2] == {"status": "success"}
    assert call(loki, "/loki/api/v1/series")[:1] == (400,)


def test_ready(loki: LokiDouble) -> None:
    assert call(loki, "/ready")[::2] == (200, "ready\n")


def test_push_needs_string_timestamps(loki: LokiDouble) -> None:
    body = json.dumps({"streams": [{"stream": {"job": "test"}, "values": [[T0, "number ts"]]}]}).encode()

    status, _, _ = call(loki, "/loki/api/v1/push", method="POST", body=body,
                        headers={"Content-Type": "application/json"})

    assert status == 400


def test_push_discovers_service_name_like_loki_3(loki: LokiDouble) -> None:
    loki.push({"app": "shop"}, [(T0, "with app")])
    loki.push({"function_id": "demo.hello"}, [(T0, "without a known label")])

    assert set(loki.streams()) == {'{app="shop", service_name="shop"}',
                                   '{function_id="demo.hello", service_name="unknown_service"}'}


def test_exact_duplicates_are_stored_once_but_equal_timestamps_are_kept(loki: LokiDouble) -> None:
    loki.push({"job": "test"}, [(T0, "same"), (T0, "same"), (T0, "other line, same nanosecond")])
    loki.push({"job": "test"}, [(T0, "same")])

    assert list(loki.streams().values()) == [[(T0, "same"), (T0, "other line, same nanosecond")]]


def test_too_old_entries_are_refused_and_the_rest_of_the_push_is_kept(loki: LokiDouble) -> None:
    eight_days_ago = time.time() - 8 * 86400

    with pytest.raises(LokiPushError) as refused:
        loki.push({"job": "test"}, [(eight_days_ago, "too old"), (T0, "fine")])

    assert refused.value.status == 400
    assert "has timestamp too old" in refused.value.body
    assert list(loki.streams().values()) == [[(T0, "fine")]]


def test_gzip_json_pushes_are_accepted_and_protobuf_is_refused_as_unsupported(loki: LokiDouble) -> None:
    body = json.dumps({"streams": [{"stream": {"job": "test"}, "values": [[str(T0), "zipped"]]}]}).encode()

    zipped = call(loki, "/loki/api/v1/push", method="POST", body=gzip.compress(body),
                  headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    protobuf = call(loki, "/loki/api/v1/push", method="POST", body=b"\x00snappy",
                    headers={"Content-Type": "application/x-protobuf"})

    assert zipped[0] == 204
    assert protobuf[0] == 415 and "only JSON" in protobuf[2]


def test_single_tenant_loki_ignores_the_org_header() -> None:
    with LokiDouble() as loki:
        loki.push({"job": "test"}, [(T0, "one tenant")], tenant="team-a")

        _, _, payload = call(loki, "/loki/api/v1/query_range", {"query": '{job="test"}', "start": str(T0)},
                             headers={"X-Scope-OrgID": "team-b"})

        assert lines_of(payload) == ["one tenant"]


def test_multi_tenant_loki_needs_an_org_id_and_keeps_tenants_apart() -> None:
    with LokiDouble(auth_enabled=True) as loki:
        loki.push({"job": "test"}, [(T0, "a's line")], tenant="team-a")
        params = {"query": '{job="test"}', "start": str(T0)}

        anonymous = call(loki, "/loki/api/v1/query_range", params)
        team_a = call(loki, "/loki/api/v1/query_range", params, headers={"X-Scope-OrgID": "team-a"})
        team_b = call(loki, "/loki/api/v1/query_range", params, headers={"X-Scope-OrgID": "team-b"})

        assert anonymous[::2] == (401, "no org id\n")
        assert lines_of(team_a[2]) == ["a's line"]
        assert lines_of(team_b[2]) == []


def test_a_gateway_in_front_asks_for_credentials() -> None:
    with LokiDouble(bearer_token="s3cret") as loki:
        params = {"query": '{job="test"}'}

        assert call(loki, "/loki/api/v1/query_range", params)[0] == 401
        assert call(loki, "/loki/api/v1/query_range", params, headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(loki, "/ready")[0] == 200


def test_fail_next_answers_the_injected_error_then_serves_again(loki: LokiDouble) -> None:
    loki.fail_next(503, "too busy", path="/loki/api/v1/query_range")

    assert call(loki, "/loki/api/v1/query_range", {"query": '{job="test"}'})[::2] == (503, "too busy")
    assert call(loki, "/loki/api/v1/query_range", {"query": '{job="test"}'})[0] == 200
