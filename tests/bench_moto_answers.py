"""Run by tests/test_bench_moto.py in its own process (the patches are global): the same
queries against moto before and after bench/scale_moto.py's patches; prints both answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import scale_moto  # noqa: E402

QUERIES = [
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "p1"}}},
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "p1"}}, "Limit": 7},
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "p2"}},
     "ScanIndexForward": False, "Limit": 5, "ConsistentRead": True},
    {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :b)",
     "ExpressionAttributeValues": {":pk": {"S": "p1"}, ":b": {"S": "WS#b"}}},
    {"KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :z",
     "ExpressionAttributeValues": {":pk": {"S": "p1"}, ":a": {"S": "WS#a#FN#f-010"}, ":z": {"S": "WS#c"}}, "Limit": 9},
    {"KeyConditionExpression": "pk = :pk", "FilterExpression": "n > :n",
     "ExpressionAttributeValues": {":pk": {"S": "p1"}, ":n": {"N": "20"}}, "Limit": 11},
    {"KeyConditionExpression": "pk = :pk", "ProjectionExpression": "sk, n",
     "ExpressionAttributeValues": {":pk": {"S": "p2"}}},
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "absent"}}},
    {"IndexName": "by-kind", "KeyConditionExpression": "kind = :k",
     "ExpressionAttributeValues": {":k": {"S": "function"}}, "Limit": 6},
]


def answers() -> list:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "kind")],
            GlobalSecondaryIndexes=[{"IndexName": "by-kind", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"},
                                                   {"AttributeName": "sk", "KeyType": "RANGE"}]}])
        client.create_table(
            TableName="numbers", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "at", "AttributeType": "N"}])
        for i in range(60):  # written out of order, over three partitions
            n = (i * 37) % 60
            client.put_item(TableName="t", Item={
                "pk": {"S": f"p{n % 3}"}, "sk": {"S": f"WS#{'abc'[n % 3 - 1]}#FN#f-{n:03d}"},
                "kind": {"S": "function" if n % 2 else "task"}, "n": {"N": str(n)}, "doc": {"S": "x" * n}})
            client.put_item(TableName="numbers", Item={"pk": {"S": "p"}, "at": {"N": str(n * 7 - 100)}})
        out = []
        for query in QUERIES:
            request = {"TableName": "t", **query}
            pages = []
            while True:
                page = client.query(**request)
                page.pop("ResponseMetadata")
                pages.append(page)
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            out.append(pages)
        out.append(client.query(TableName="numbers", KeyConditionExpression="pk = :p AND #a > :a",
                                ExpressionAttributeNames={"#a": "at"},
                                ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "-3"}}, Limit=8)["Items"])
        return out


if __name__ == "__main__":
    stock = answers()
    scale_moto.install_item_level_rollback()
    scale_moto.install_json_query_responses()
    scale_moto.install_direct_string_values()
    scale_moto.install_partition_queries()
    print(json.dumps({"stock": stock, "patched": answers()}, default=str))
