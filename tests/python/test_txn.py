"""`/v1/txn` through py-consul and raw HTTP: all or nothing."""

import base64
import json
import urllib.error
import urllib.request

import consul


def b64(s):
    return base64.b64encode(s.encode()).decode()


def put_txn(agent, ops):
    req = urllib.request.Request(f"http://{agent.http_addr}/v1/txn",
                                 data=json.dumps(ops).encode(), method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_failing_check_in_the_middle_writes_nothing(agent):
    host, port = agent.http_addr.split(":")
    c = consul.Consul(host=host, port=int(port))
    assert c.kv.put("txn/a", "old") is True
    index = c.kv.get("txn/a")[1]["ModifyIndex"]

    code, body = put_txn(agent, [
        {"KV": {"Verb": "set", "Key": "txn/a", "Value": b64("new")}},
        {"KV": {"Verb": "set", "Key": "txn/b", "Value": b64("x")}},
        {"KV": {"Verb": "check-index", "Key": "txn/a", "Index": index}},
    ])
    assert code == 409, body
    body = json.loads(body)
    assert body["Results"] is None
    assert body["Errors"][0]["OpIndex"] == 2
    assert c.kv.get("txn/a")[1]["Value"] == b"old"
    assert c.kv.get("txn/b")[1] is None

    r = c.txn.put([
        {"KV": {"Verb": "check-index", "Key": "txn/a", "Index": index}},
        {"KV": {"Verb": "cas", "Key": "txn/a", "Value": b64("new"), "Index": index}},
        {"KV": {"Verb": "check-not-exists", "Key": "txn/c"}},
        {"KV": {"Verb": "set", "Key": "txn/c", "Value": b64("z")}},
        {"KV": {"Verb": "get-tree", "Key": "txn/"}},
    ])
    assert r["Errors"] is None
    keys = [x["KV"]["Key"] for x in r["Results"]]
    assert keys == ["txn/a", "txn/c", "txn/a", "txn/c"]
    assert base64.b64decode(r["Results"][2]["KV"]["Value"]) == b"new"

    code, body = put_txn(agent, [{"KV": {"Verb": "get", "Key": "txn/a"}}] * 65)
    assert code == 413 and "too many operations (65 > 64)" in body
