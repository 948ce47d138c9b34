"""User events, snapshots and catalog verbs in transactions, driven by
py-consul as an application would."""

import base64
import threading
import time

import consul
import pytest


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def test_events_fire_list_and_block(agent):
    c = client(agent)
    index, events = c.event.list(name="deploy")
    assert events == []

    woke = {}

    def wait():
        t = time.time()
        woke["result"] = c.event.list(name="deploy", index=index, wait="20s")
        woke["after"] = time.time() - t

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    fired = c.event.fire("deploy", "v1.2.3")
    assert fired["Name"] == "deploy" and fired["ID"]
    waiter.join(timeout=30)
    new_index, events = woke["result"]
    assert new_index != index
    # py-consul decodes the base64 payload itself.
    assert [e["Payload"] for e in events] in (["v1.2.3"], [b"v1.2.3"])
    assert events[0]["Name"] == "deploy" and events[0]["Version"] == 1

    # An event for other nodes only is not kept here; another name is.
    c.event.fire("deploy", "elsewhere", node="^not-this-node$")
    c.event.fire("restart")
    time.sleep(0.3)
    assert len(c.event.list(name="deploy")[1]) == 1
    names = [e["Name"] for e in c.event.list()[1]]
    assert names == ["deploy", "restart"]
    assert c.event.list(name="restart")[1][0]["Payload"] is None

    with pytest.raises(consul.ConsulException):
        c.event.fire("deploy", "x", dc="nowhere")


def test_snapshot_save_and_restore(agent):
    c = client(agent)
    c.kv.put("snap/a", "1")
    c.kv.put("snap/b", "2")
    c.catalog.register("ext-node", "10.1.1.1", service={"Service": "ext", "Port": 9})
    archive = c.snapshot.save()
    assert archive[:2] == b"\x1f\x8b", "a gzip archive"

    c.kv.put("snap/a", "changed")
    c.kv.delete("snap/b")
    c.kv.put("snap/c", "new")
    c.catalog.deregister("ext-node")

    assert c.snapshot.restore(archive) is True
    assert c.kv.get("snap/a")[1]["Value"] == b"1"
    assert c.kv.get("snap/b")[1]["Value"] == b"2"
    assert c.kv.get("snap/c")[1] is None
    assert [n["Node"] for n in c.catalog.service("ext")[1]] == ["ext-node"]

    with pytest.raises(consul.ConsulException) as e:
        c.snapshot.restore(archive[: len(archive) // 2])
    assert str(e.value).startswith("400 ")
    assert c.kv.get("snap/a")[1]["Value"] == b"1"


def test_transactions_with_catalog_verbs(agent):
    c = client(agent)
    r = c.txn.put([
        {"Node": {"Verb": "set", "Node": {"Node": "txn-node", "Address": "10.2.2.2"}}},
        {"Service": {"Verb": "set", "Node": "txn-node",
                     "Service": {"ID": "api-1", "Service": "txnapi", "Port": 8080, "Tags": ["v2"]}}},
        {"Check": {"Verb": "set", "Check": {"Node": "txn-node", "CheckID": "api-up",
                                            "Name": "api up", "Status": "passing",
                                            "ServiceID": "api-1"}}},
        {"KV": {"Verb": "set", "Key": "txn/registered", "Value": base64.b64encode(b"yes").decode()}},
    ])
    assert r["Errors"] is None
    assert [list(x.keys())[0] for x in r["Results"]] == ["Node", "Service", "Check", "KV"]
    node_index = r["Results"][0]["Node"]["ModifyIndex"]
    _, nodes = c.health.service("txnapi", passing=True)
    assert [n["Node"]["Node"] for n in nodes] == ["txn-node"]

    # A stale CAS last: the delete before it is undone.
    with pytest.raises(consul.ConsulException) as e:
        c.txn.put([
            {"Node": {"Verb": "delete", "Node": {"Node": "txn-node"}}},
            {"Node": {"Verb": "cas", "Node": {"Node": "txn-node", "Address": "10.9.9.9",
                                              "ModifyIndex": node_index + 100}}},
        ])
    assert "index is stale" in str(e.value)
    assert c.catalog.node("txn-node")[1]["Node"]["Address"] == "10.2.2.2"
    assert [s["ServiceID"] for s in c.catalog.service("txnapi")[1]] == ["api-1"]

    r = c.txn.put([
        {"Service": {"Verb": "get", "Node": "txn-node", "Service": {"ID": "api-1"}}},
        {"Node": {"Verb": "delete-cas", "Node": {"Node": "txn-node", "ModifyIndex": node_index}}},
    ])
    assert r["Results"][0]["Service"]["Port"] == 8080
    assert c.catalog.node("txn-node")[1] is None
    assert c.health.service("txnapi")[1] == []
