"""Two datacenters joined over the WAN, seen through py-consul's `dc=`
arguments and dig's `NAME.service.DC.consul` names."""

import io
import tarfile
import time

import consul

from conftest import Agent


def test_dc_argument_and_dns_names_reach_the_other_datacenter():
    dc1 = Agent(extra_args=["-datacenter", "dc1"], node="east-1")
    dc2 = Agent(extra_args=["-datacenter", "dc2", "-join-wan",
                            f"127.0.0.1:{dc1.serf_wan_port}"], node="west-1")
    try:
        c1 = consul.Consul(host="127.0.0.1", port=dc1.http_port)
        c2 = consul.Consul(host="127.0.0.1", port=dc2.http_port)
        deadline = time.time() + 20
        while time.time() < deadline and c1.catalog.datacenters() != ["dc1", "dc2"]:
            time.sleep(0.1)
        assert c1.catalog.datacenters() == ["dc1", "dc2"]
        assert c2.catalog.datacenters()[0] == "dc2"

        # KV with dc=: written in dc2 through dc1, never in dc1.
        assert c1.kv.put("fed/key", "west", dc="dc2") is True
        assert c2.kv.get("fed/key")[1]["Value"] == b"west"
        assert c1.kv.get("fed/key")[1] is None
        assert c1.kv.get("fed/key", dc="dc2")[1]["Value"] == b"west"

        # An event fired for dc2 through dc1 reaches dc2's agents only.
        fired = c1.event.fire("deploy", "to-west", dc="dc2")
        deadline = time.time() + 10
        while time.time() < deadline and not c2.event.list(name="deploy")[1]:
            time.sleep(0.1)
        assert [e["ID"] for e in c2.event.list(name="deploy")[1]] == [fired["ID"]]
        assert c1.event.list(name="deploy")[1] == []

        # dc2's snapshot, taken through dc1, holds dc2's data.
        archive = c1.snapshot.save(dc="dc2")
        assert archive[:2] == b"\x1f\x8b"
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as t:
            state = t.extractfile("state.json").read()
        assert b"fed/key" in state

        # A service of dc2, found from dc1 by the API and by DNS.
        c2.agent.service.register("api", port=7000)
        deadline = time.time() + 10
        while time.time() < deadline and not c1.catalog.service("api", dc="dc2")[1]:
            time.sleep(0.1)
        assert c1.catalog.service("api", dc="dc2")[1][0]["Datacenter"] == "dc2"
        assert c1.catalog.service("api")[1] == []
        assert "127.0.0.1" in dc1.dig("+short", "api.service.dc2.consul")
        srv = dc1.dig("+short", "api.service.dc2.consul", "SRV")
        assert "7000" in srv and "west-1.node.dc2.consul." in srv
        assert dc1.dig("+short", "api.service.consul").strip() == ""
        assert "status: NXDOMAIN" in dc1.dig("api.service.dc9.consul")
    finally:
        dc2.stop()
        dc1.stop()
