"""dig against agents under `default_policy = "deny"`: DNS answers with
`acl.tokens.dns`, and without it sees what the anonymous token may, which
is nothing (Consul answers such a name NXDOMAIN, with its SOA)."""

import json
import os
import shutil
import tempfile
import time
import urllib.request
import uuid

import pytest

from conftest import Agent

ROOT = str(uuid.uuid4())
DNS_SECRET = str(uuid.uuid4())


def deny_agent(node, dns_token=None):
    """An agent under default deny with service `web`, its config dir."""
    d = tempfile.mkdtemp(prefix="meridian-dnsacl-")
    tokens = f'    initial_management = "{ROOT}"\n    agent = "{ROOT}"\n'
    if dns_token:
        tokens += f'    dns = "{dns_token}"\n'
    with open(os.path.join(d, "acl.hcl"), "w") as f:
        f.write('acl {\n  enabled = true\n  default_policy = "deny"\n'
                f"  tokens {{\n{tokens}  }}\n}}\n")
    with open(os.path.join(d, "web.json"), "w") as f:
        f.write('{"service": {"name": "web", "port": 8080}}\n')
    # The status endpoints are open under default deny: ready = a leader.
    a = Agent(config_dir=d, node=node, ephemeral=True,
              ready=("/v1/status/leader", b'"127.0.0.1:'))
    return a, d


def call(agent, method, path, body=None, token=ROOT):
    req = urllib.request.Request(
        f"http://{agent.http_addr}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Consul-Token": token})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


def wait_for_web(agent, timeout=30):
    """The agent's anti-entropy (with its agent token) has put web in the
    catalog, as the management token sees it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if call(agent, "GET", "/v1/catalog/service/web"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("web never reached the catalog")


@pytest.fixture
def agents():
    started = []

    def start(node, dns_token=None):
        a, d = deny_agent(node, dns_token)
        started.append((a, d))
        wait_for_web(a)
        return a

    yield start
    for a, d in started:
        a.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_without_a_dns_token_dig_gets_nxdomain(agents):
    a = agents("dnsacl-anon")
    out = a.dig("web.service.consul", "A")
    assert "status: NXDOMAIN" in out, out
    assert "ANSWER: 0" in out, out
    assert "SOA" in out, out  # Consul's negative answer carries its SOA
    assert a.dig("+short", "web.service.consul", "SRV").strip() == ""


def test_with_a_dns_token_that_may_read_dig_gets_the_instance(agents):
    a = agents("dnsacl-token", dns_token=DNS_SECRET)
    # Until the token exists the agent's DNS token is "ACL not found", a
    # failed lookup, which Consul answers SERVFAIL.
    assert "status: SERVFAIL" in a.dig("web.service.consul", "A")
    rules = 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n'
    call(a, "PUT", "/v1/acl/policy", {"Name": "dns-read", "Rules": rules})
    call(a, "PUT", "/v1/acl/token",
         {"SecretID": DNS_SECRET, "Description": "dns", "Policies": [{"Name": "dns-read"}]})
    out = a.dig("web.service.consul", "A")
    assert "status: NOERROR" in out, out
    assert a.dig("+short", "web.service.consul").split() == ["127.0.0.1"]
    srv = a.dig("+short", "web.service.consul", "SRV")
    assert " 8080 " in srv, srv
