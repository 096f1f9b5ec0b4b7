"""The fault-injecting proxy itself: transparent when it injects nothing, and each fault looks to
a real client (urllib3, botocore) the way the real failure does."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import urllib3

from testkit.faultproxy import (
    FaultProxy,
    aws_throttling,
    delay,
    drop,
    http_error,
    kube_too_many_requests,
    reset_mid_body,
    s3_slow_down,
)
from testkit.moto import MotoServer


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received; ``/big`` answers 1 MB."""

    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.command, self.path))
        if self.path == "/big":
            data = b"x" * 1_000_000
        else:
            data = json.dumps({"method": self.command, "path": self.path, "host": self.headers["Host"],
                               "body": body.decode(), "x-test": self.headers.get("X-Test")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: str) -> Iterator[FaultProxy]:
    _Echo.received.clear()
    with FaultProxy(upstream, seed=42) as running:
        yield running


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 5) -> urllib3.BaseHTTPResponse:
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=timeout))
    return pool.request(method, url, body=body, headers=headers or {})


def test_without_rules_requests_and_answers_pass_through_unchanged(proxy: FaultProxy) -> None:
    answer = request(proxy.url + "/a/b?x=1", "PUT", b"payload", {"X-Test": "kept"})
    assert answer.status == 201 and answer.headers["X-Upstream"] == "yes"
    echoed = json.loads(answer.data)
    assert echoed == {"method": "PUT", "path": "/a/b?x=1", "host": proxy.url.removeprefix("http://"),
                      "body": "payload", "x-test": "kept"}
    head = request(proxy.url + "/big", "HEAD")
    assert head.status == 201 and head.headers["Content-Length"] == "1000000" and head.data == b""
    assert len(request(proxy.url + "/big").data) == 1_000_000
    assert proxy.stats()["requests"] == proxy.stats()["forwarded"] == 3
    assert proxy.stats()["injected_total"] == 0


def test_rules_match_method_path_and_fire_a_number_of_times(proxy: FaultProxy) -> None:
    rule = proxy.inject(http_error(503), method="POST", path=r"^/uploads/", times=2)
    assert request(proxy.url + "/uploads/1", "GET").status == 201  # wrong method
    assert request(proxy.url + "/other", "POST").status == 201  # wrong path
    assert [request(proxy.url + "/uploads/1", "POST").status for _ in range(3)] == [503, 503, 201]
    assert (rule.matched, rule.injected) == (3, 2)
    assert proxy.stats()["injected"] == {"http-503": 2}
    assert ("POST", "/uploads/1") in _Echo.received and _Echo.received.count(("POST", "/uploads/1")) == 1


def test_after_skips_the_first_matches(proxy: FaultProxy) -> None:
    proxy.inject(http_error(500), path="^/x", after=1, times=1)
    assert [request(proxy.url + "/x").status for _ in range(3)] == [201, 500, 201]


def test_probabilistic_rules_are_deterministic_for_a_seed(upstream: str) -> None:
    outcomes = []
    for _ in range(2):
        with FaultProxy(upstream, seed=7) as proxy:
            proxy.inject(http_error(500), probability=0.3)
            outcomes.append([request(proxy.url + "/p").status for _ in range(40)])
    assert outcomes[0] == outcomes[1]
    assert 4 <= outcomes[0].count(500) <= 20


def test_disable_passes_everything_through_and_keeps_the_rules(proxy: FaultProxy) -> None:
    proxy.inject(http_error(500))
    proxy.disable()
    assert request(proxy.url + "/d").status == 201
    proxy.enable()
    assert request(proxy.url + "/d").status == 500


def test_kubernetes_429_carries_retry_after_and_a_status_body(proxy: FaultProxy) -> None:
    proxy.inject(kube_too_many_requests(retry_after=3), method="PATCH")
    answer = request(proxy.url + "/apis/x", "PATCH", b"{}")
    assert answer.status == 429 and answer.headers["Retry-After"] == "3"
    status = json.loads(answer.data)
    assert (status["kind"], status["reason"], status["code"], status["details"]) == (
        "Status", "TooManyRequests", 429, {"retryAfterSeconds": 3})


def test_drop_closes_the_connection_without_an_answer(proxy: FaultProxy) -> None:
    proxy.inject(drop(), times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        request(proxy.url + "/gone")
    assert ("GET", "/gone") not in _Echo.received  # never forwarded
    proxy.inject(drop(after_forward=True), times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        request(proxy.url + "/lost-answer", "POST", b"x")
    assert ("POST", "/lost-answer") in _Echo.received  # the upstream did it; the client can't know


def test_reset_mid_body_cuts_the_answer_short(proxy: FaultProxy) -> None:
    proxy.inject(reset_mid_body(), times=1)
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    connection.request("GET", "/big")
    response = connection.getresponse()
    assert response.status == 201 and response.getheader("Content-Length") == "1000000"
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    connection.close()
    assert proxy.stats()["injected"] == {"reset-mid-body": 1}


def test_delay_outlasts_the_client_timeout(proxy: FaultProxy) -> None:
    proxy.inject(delay(5), times=1)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        request(proxy.url + "/slow", timeout=0.5)
    assert time.monotonic() - started < 2
    assert request(proxy.url + "/slow").status == 201  # the next one is fast


def test_stop_releases_held_requests(upstream: str) -> None:
    proxy = FaultProxy(upstream).start()
    proxy.inject(delay(60))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            request(proxy.url + "/held", timeout=30)
        except BaseException as exc:  # noqa: BLE001 - any failure is the expected outcome
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    proxy.stop()
    caller.join(10)
    assert not caller.is_alive() and errors and time.monotonic() - started < 5


# ------------------------------------------------------------------ as botocore sees the faults


@pytest.fixture
def dynamodb_through_proxy(moto_service: MotoServer) -> Iterator[tuple[Any, FaultProxy]]:
    import boto3
    from botocore.config import Config

    moto_service.reset()
    with FaultProxy(moto_service.url) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1",
                              config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield client, proxy


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_aws_throttling_parses_as_the_dynamodb_error_botocore_retries(dynamodb_through_proxy: tuple[Any, FaultProxy],
                                                                         code: str) -> None:
    from botocore.exceptions import ClientError
    from botocore.retries.standard import ThrottledRetryableChecker

    client, proxy = dynamodb_through_proxy
    proxy.inject(aws_throttling(code), target="GetItem", times=1)
    with pytest.raises(ClientError) as raised:
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert code in ThrottledRetryableChecker._THROTTLED_ERROR_CODES  # standard mode retries it
    client.get_item(TableName="t", Key={"pk": {"S": "a"}})  # times=1: the next one passes


def test_target_matches_the_dynamodb_operation_only(dynamodb_through_proxy: tuple[Any, FaultProxy]) -> None:
    client, proxy = dynamodb_through_proxy
    proxy.inject(http_error(500), target="DynamoDB_20120810.PutItem")
    client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        client.put_item(TableName="t", Item={"pk": {"S": "a"}})
    assert proxy.stats()["by_request"]["POST PutItem"] == 1


def test_s3_slow_down_parses_as_the_s3_error(moto_service: MotoServer) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    moto_service.reset()
    with FaultProxy(moto_service.url) as proxy:
        s3 = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        s3.create_bucket(Bucket="bkt")
        proxy.inject(s3_slow_down(), method="PUT", times=1)
        with pytest.raises(ClientError) as raised:
            s3.put_object(Bucket="bkt", Key="k", Body=b"data")
        assert raised.value.response["Error"]["Code"] == "SlowDown"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        s3.put_object(Bucket="bkt", Key="k", Body=b"data")
        assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"data"
