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


@pytest.fixture(scope="module")
def tight_agent():
    """An agent answering a second domain (-alt-domain), with one answer
    per plain UDP response and TC set when answers were cut."""
    d = tempfile.mkdtemp(prefix="meridian-dns-tc-")
    with open(os.path.join(d, "dns.hcl"), "w") as f:
        f.write("dns_config {\n  udp_answer_limit = 1\n  enable_truncate = true\n}\n")
        for i in (2, 3):
            f.write(f'service {{\n  id = "multi-{i}"\n  name = "multi"\n  port = 80\n'
                    f'  address = "127.0.0.{i}"\n}}\n')
    a = Agent(["-alt-domain", "meridian.test"], config_dir=d, node="pytest-dns-tc",
              ephemeral=True)
    a.wait_for("/v1/catalog/service/multi", b'"multi-3"')
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_cut_udp_answers_set_tc_and_dig_retries_over_tcp(tight_agent):
    # udp_answer_limit is for plain UDP: dig sends EDNS unless told not to.
    udp_only = tight_agent.dig("+ignore", "+noedns", "multi.service.consul", "A")
    assert " tc" in udp_only.split("flags:", 1)[1].split(";", 1)[0], udp_only
    assert "ANSWER: 1," in udp_only, udp_only
    # dig's own behaviour on TC: ask again over TCP, and get both.
    retried = tight_agent.dig("+noedns", "multi.service.consul", "A")
    assert "ANSWER: 2," in retried, retried
    assert sorted(tight_agent.dig("+short", "+tcp", "multi.service.consul").split()) == [
        "127.0.0.2", "127.0.0.3"]


def test_alt_domain_answers_in_the_domain_asked(tight_agent):
    out = tight_agent.dig("pytest-dns-tc.node.meridian.test", "A")
    assert "status: NOERROR" in out, out
    answer = out.split("ANSWER SECTION:", 1)[1].split("\n\n", 1)[0].split()
    assert answer == ["pytest-dns-tc.node.meridian.test.", "0", "IN", "A", "127.0.0.1"], out
    srv = tight_agent.dig("+short", "+tcp", "multi.service.meridian.test", "SRV").split()
    assert "7f000002.addr.dc1.meridian.test." in srv, srv
    nx = tight_agent.dig("nope.service.meridian.test")
    authority = nx.split("AUTHORITY SECTION:", 1)[1].split()
    assert "status: NXDOMAIN" in nx and authority[0] == "meridian.test.", nx
