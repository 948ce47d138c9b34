"""Meridian driven by py-consul, a Consul client library from PyPI, and by
dig: software that shares none of our assumptions."""

import threading
import time

import consul


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def test_kv_round_trip_cas_and_recurse(agent):
    c = client(agent)
    assert c.kv.put("py/a", "1") is True
    assert c.kv.put("py/b", b"\x00\xffbinary") is True
    index, entry = c.kv.get("py/a")
    assert entry["Value"] == b"1"
    assert int(index) >= entry["ModifyIndex"]
    assert c.kv.put("py/a", "2", cas=entry["ModifyIndex"] + 999) is False
    assert c.kv.put("py/a", "2", cas=entry["ModifyIndex"]) is True
    assert c.kv.put("py/new", "x", cas=0) is True
    assert c.kv.put("py/new", "y", cas=0) is False
    _, entries = c.kv.get("py/", recurse=True)
    assert [e["Key"] for e in entries] == ["py/a", "py/b", "py/new"]
    assert entries[1]["Value"] == b"\x00\xffbinary"
    _, keys = c.kv.get("py/", keys=True, separator="/")
    assert keys == ["py/a", "py/b", "py/new"]
    assert c.kv.delete("py/", recurse=True) is True
    _, gone = c.kv.get("py/a")
    assert gone is None


def test_blocking_get_wakes_on_write(agent):
    c = client(agent)
    c.kv.put("py/watch", "v1")
    index, _ = c.kv.get("py/watch")
    result = {}

    def block():
        t = time.time()
        result["index"], result["entry"] = c.kv.get("py/watch", index=index, wait="5s")
        result["elapsed"] = time.time() - t

    th = threading.Thread(target=block)
    th.start()
    time.sleep(0.3)
    c.kv.put("py/watch", "v2")
    th.join(10)
    assert result["entry"]["Value"] == b"v2"
    assert int(result["index"]) > int(index)


def test_services_from_config_dir_in_catalog_and_agent(agent):
    c = client(agent)
    services = c.agent.services()
    assert services["web"]["Port"] == 8080
    assert services["api"]["Tags"] == ["v2"]
    _, nodes = c.catalog.service("web")
    assert nodes[0]["ServicePort"] == 8080
    assert nodes[0]["Node"] == "pytest-node"
    _, svcs = c.catalog.services()
    assert "consul" in svcs and "api" in svcs
    _, health = c.health.service("api", passing=True)
    assert health[0]["Service"]["Port"] == 9090


def test_agent_register_and_status(agent):
    c = client(agent)
    c.agent.service.register("cache", service_id="cache1", port=6379, tags=["redis"])
    _, nodes = c.catalog.service("cache", tag="redis")
    assert nodes[0]["ServiceID"] == "cache1"
    assert c.status.leader().endswith(":" + str(c.status.leader().split(":")[1]))
    assert len(c.status.peers()) == 1
    assert c.agent.self()["Config"]["Datacenter"] == "dc1"
    members = c.agent.members()
    assert members[0]["Name"] == "pytest-node" and members[0]["Status"] == 1
    c.agent.service.deregister("cache1")
    _, nodes = c.catalog.service("cache")
    assert nodes == []


def test_dns_a_and_srv_with_dig(agent):
    a = agent.dig("web.service.consul", "A", "+short")
    assert "127.0.0.1" in a
    srv = agent.dig("_web._tcp.service.consul", "SRV")
    assert "8080 pytest-node.node.dc1.consul." in srv
    assert "ADDITIONAL SECTION" in srv
    tagged = agent.dig("blue.web.service.consul", "A", "+short")
    assert "127.0.0.1" in tagged
    nx = agent.dig("nope.service.consul", "A")
    assert "NXDOMAIN" in nx and "SOA" in nx
    node = agent.dig("pytest-node.node.consul", "A", "+short")
    assert "127.0.0.1" in node
