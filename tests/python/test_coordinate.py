"""Network coordinates as py-consul reads them: the WAN map of the
datacenters, every node's LAN coordinate (with a blocking read), one
node's, and `near` sorting of the catalog and health reads."""

import json
import os
import time

import consul
import pytest
from consul.callback import CB

from conftest import Agent


@pytest.fixture(scope="module")
def coord_agent():
    # The leader's batch period, shortened so the test does not wait 5 s
    # per write (a test knob; Consul's period is 5 s).
    os.environ["MERIDIAN_COORDINATE_UPDATE_PERIOD"] = "200ms"
    try:
        a = Agent(node="py-coord", ephemeral=True)
    finally:
        del os.environ["MERIDIAN_COORDINATE_UPDATE_PERIOD"]
    yield a
    a.stop()


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def coord(x):
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}


def put_coordinate(c, node, x):
    # py-consul reads coordinates but has no call to write one: its own
    # HTTP transport sends Consul's request.
    body = json.dumps({"Node": node, "Coord": coord(x)})
    assert c.http.put(CB.boolean(), "/v1/coordinate/update", data=body) is True


def wait_nodes(c, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        index, nodes = c.coordinate.nodes()
        if len(nodes or []) >= n:
            return index, nodes
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} coordinates within {timeout} s")


def test_datacenters_lists_the_servers_wan_coordinates(coord_agent):
    c = client(coord_agent)
    dcs = c.coordinate.datacenters()
    assert [d["Datacenter"] for d in dcs] == ["dc1"]
    assert dcs[0]["AreaID"] == "wan"
    [me] = dcs[0]["Coordinates"]
    assert me["Node"] == "py-coord.dc1"
    assert len(me["Coord"]["Vec"]) == 8
    assert set(me["Coord"]) == {"Vec", "Error", "Adjustment", "Height"}


def test_nodes_node_and_near(coord_agent):
    c = client(coord_agent)
    places = {"py-a": 0.0, "py-b": 0.002, "py-c": 0.010, "py-d": 0.030}
    for name in places:
        assert c.catalog.register(name, "10.9.0.1", service={"service": "pyweb", "port": 80})
    for name, x in places.items():
        put_coordinate(c, name, x)
    # Unknown nodes' updates are dropped, not stored.
    put_coordinate(c, "py-ghost", 0.5)
    index, nodes = wait_nodes(c, len(places))
    assert sorted(n["Node"] for n in nodes) == sorted(places)
    assert all(n["Segment"] == "" for n in nodes)

    _, one = c.coordinate.node("py-c")
    assert one[0]["Coord"]["Vec"][0] == pytest.approx(0.010)

    # A blocking read wakes on the next batch.
    put_coordinate(c, "py-d", 0.040)
    index2, nodes = c.coordinate.nodes(index=index, wait="10s")
    assert int(index2) > int(index)
    d = next(n for n in nodes if n["Node"] == "py-d")
    assert d["Coord"]["Vec"][0] == pytest.approx(0.040)

    # Nearest first from py-b: a (2 ms), c (8 ms), d (38 ms); the agent's
    # own node has no LAN coordinate (alone, it measured nothing): last.
    _, catalog = c.catalog.nodes(near="py-b")
    names = [n["Node"] for n in catalog]
    assert names[:4] == ["py-b", "py-a", "py-c", "py-d"], names
    assert names[-1] == "py-coord"
    _, svc = c.catalog.service("pyweb", near="py-d")
    assert [s["Node"] for s in svc] == ["py-d", "py-c", "py-b", "py-a"]
    _, health = c.health.service("pyweb", near="py-c")
    assert [h["Node"]["Node"] for h in health] == ["py-c", "py-b", "py-a", "py-d"]
