"""dig against a dev agent for the records beyond A and SRV: reverse
lookups (`dig -x`), an SRV target for a service with its own address
that dig follows to that address, the domain's NS, node meta as TXT."""

import os
import shutil
import tempfile

import pytest

from conftest import Agent

NODE = "pytest-dns"


@pytest.fixture(scope="module")
def agent():
    d = tempfile.mkdtemp(prefix="meridian-dns-")
    with open(os.path.join(d, "services.hcl"), "w") as f:
        f.write('node_meta {\n  rack = "r1"\n}\n'
                'service {\n  name = "web"\n  port = 8080\n}\n'
                # Its own address, not the node's (127.0.0.1).
                'service {\n  name = "db"\n  port = 5432\n  address = "127.0.0.2"\n}\n')
    a = Agent(config_dir=d, node=NODE, ephemeral=True)
    a.wait_for("/v1/catalog/service/db", b'"ServiceName"')
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_dig_x_answers_ptr_for_the_node(agent):
    out = agent.dig("-x", "127.0.0.1")
    assert "status: NOERROR" in out, out
    assert "1.0.0.127.in-addr.arpa." in out and "PTR" in out, out
    assert agent.dig("+short", "-x", "127.0.0.1").split() == [f"{NODE}.node.dc1.consul."]
    # No node at 127.0.0.2: the service registered with that address.
    assert agent.dig("+short", "-x", "127.0.0.2").split() == ["db.service.dc1.consul."]
    assert "status: NXDOMAIN" in agent.dig("-x", "192.0.2.99")


def test_srv_for_a_service_with_its_own_address_resolves_to_it(agent):
    srv = agent.dig("+short", "db.service.consul", "SRV").split()
    assert srv[:3] == ["1", "1", "5432"], srv
    target = srv[3]
    assert target == "7f000002.addr.dc1.consul.", srv
    # The address rides along in ADDITIONAL, and the target resolves to it.
    full = agent.dig("db.service.consul", "SRV")
    additional = full.split("ADDITIONAL SECTION:", 1)[1]
    assert target in additional and "127.0.0.2" in additional, full
    assert agent.dig("+short", target, "A").split() == ["127.0.0.2"]
    # A service at its node's address keeps the node's name as target.
    web = agent.dig("+short", "web.service.consul", "SRV").split()
    assert web[3] == f"{NODE}.node.dc1.consul.", web
    assert agent.dig("+short", web[3], "A").split() == ["127.0.0.1"]
    assert "status: NXDOMAIN" in agent.dig("zz.addr.dc1.consul", "A")


def test_ns_and_node_meta_txt(agent):
    ns = agent.dig("+short", "consul", "NS").split()
    assert ns == [f"{NODE}.node.dc1.consul."], ns
    soa = agent.dig("+short", "consul", "SOA").split()
    assert soa[0] == ns[0], "the SOA's primary is the name server"
    txt = agent.dig("+short", f"{NODE}.node.consul", "TXT").split()
    assert '"rack=r1"' in txt, txt
