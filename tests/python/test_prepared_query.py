"""Prepared queries through py-consul's `query` calls and dig's
`NAME.query.consul` names, and a query's failover between two
datacenters as its instances' TTL checks flip."""

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import consul

from conftest import Agent


def wait_until(what, check, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_py_consul_query_calls_and_dig(agent):
    c = consul.Consul(host="127.0.0.1", port=agent.http_port)
    created = c.query.create("web", name="webq", ttl="10s", tags=["blue"])
    qid = created["ID"]

    got = c.query.get(qid)
    assert [q["ID"] for q in got] == [qid]
    assert got[0]["Name"] == "webq"
    assert got[0]["Service"]["Service"] == "web"
    assert got[0]["DNS"]["TTL"] == "10s"
    assert qid in [q["ID"] for q in c.query.list()]

    result = c.query.execute("webq")
    assert result["Service"] == "web"
    assert result["Datacenter"] == "dc1"
    assert result["Failovers"] == 0
    assert [n["Service"]["Port"] for n in result["Nodes"]] == [8080]
    assert c.query.execute(qid, limit=1)["Nodes"][0]["Node"]["Node"] == agent.node

    # py-consul always sends a name_prefix_match template: explain shows
    # the rendered query.
    explained = c.query.explain("webq")
    assert explained["Query"]["Service"]["Service"] == "web"

    assert "127.0.0.1" in agent.dig("+short", "webq.query.consul")
    srv = agent.dig("webq.query.consul", "SRV")
    assert "8080" in srv and f"{agent.node}.node.dc1.consul." in srv
    # The query's DNS TTL, not the service's default of 0.
    assert "\t10\tIN\tSRV" in srv
    assert "status: NXDOMAIN" in agent.dig("nothing.query.consul")

    # A tag no instance has: nothing to answer.
    assert c.query.update(qid, "web", name="webq", tags=["green"]) is True
    assert c.query.execute("webq")["Nodes"] == []
    assert "status: NXDOMAIN" in agent.dig("webq.query.consul")

    assert c.query.delete(qid) is True
    assert qid not in [q["ID"] for q in c.query.list()]
    # 404 `Query not found`, which py-consul's reads answer as None.
    assert c.query.get(qid) is None


def test_nearest_datacenter_answers_while_local_instances_are_critical():
    dc1 = Agent(extra_args=["-datacenter", "dc1"], node="east-1")
    dc2 = Agent(extra_args=["-datacenter", "dc2", "-join-wan",
                            f"127.0.0.1:{dc1.serf_wan_port}"], node="west-1")
    try:
        c1 = consul.Consul(host="127.0.0.1", port=dc1.http_port)
        c2 = consul.Consul(host="127.0.0.1", port=dc2.http_port)
        wait_until("dc1 sees dc2", lambda: c1.catalog.datacenters() == ["dc1", "dc2"])

        # Each datacenter's instance has its own address, so the answer
        # tells which one served.
        for c, addr in ((c1, "10.1.0.1"), (c2, "10.2.0.1")):
            c.agent.service.register("web", address=addr, port=80, check=consul.Check.ttl("10m"))
            assert c.agent.check.ttl_pass("service:web") is True
        for c in (c1, c2):
            wait_until("web passing", lambda c=c: c.health.service("web", passing=True)[1])

        c1.query.create("web", name="web-fo", nearestn=1, ttl="5s")

        def served_by(dc):
            r = c1.query.execute("web-fo")
            return r if r["Datacenter"] == dc and r["Nodes"] else None

        local = wait_until("dc1 answers", lambda: served_by("dc1"))
        assert local["Failovers"] == 0
        assert local["Nodes"][0]["Service"]["Address"] == "10.1.0.1"
        assert dc1.dig("+short", "web-fo.query.consul").split() == ["10.1.0.1"]

        # dc1's instance goes critical: dc2, the nearest other, answers.
        assert c1.agent.check.ttl_fail("service:web") is True
        remote = wait_until("dc2 answers", lambda: served_by("dc2"))
        assert remote["Failovers"] == 1
        assert remote["Nodes"][0]["Service"]["Address"] == "10.2.0.1"
        assert remote["Nodes"][0]["Node"]["Node"] == "west-1"
        assert dc1.dig("+short", "web-fo.query.consul").split() == ["10.2.0.1"]
        srv = dc1.dig("web-fo.query.consul", "SRV")
        assert "west-1.node.dc2.consul." in srv and "\t5\tIN\tSRV" in srv

        # Passing again: dc1 answers again, by HTTP and DNS.
        assert c1.agent.check.ttl_pass("service:web") is True
        wait_until("dc1 answers again", lambda: served_by("dc1"))
        assert dc1.dig("+short", "web-fo.query.consul").split() == ["10.1.0.1"]
    finally:
        dc2.stop()
        dc1.stop()


def _http(agent, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://{agent.http_addr}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("X-Consul-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_query_rules_decide_and_tokens_are_hidden():
    d = tempfile.mkdtemp(prefix="meridian-acl-")
    with open(os.path.join(d, "acl.hcl"), "w") as f:
        f.write("acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n")
    a = Agent(config_dir=d, node="pq-acl", ready=("/v1/status/leader", b'"127.0.0.1:'))
    try:
        mgmt = consul.Consul(host="127.0.0.1", port=a.http_port).acl.bootstrap()["SecretID"]
        admin = consul.Consul(host="127.0.0.1", port=a.http_port, token=mgmt)
        policy = admin.acl.policy.create(
            "web-queries", rules={"query_prefix": {"web-": {"policy": "write"}},
                                  "service_prefix": {"": {"policy": "read"}},
                                  "node_prefix": {"": {"policy": "read"}}})
        tok = admin.acl.token.create(policies_id=[policy["ID"]])["SecretID"]

        body = {"Name": "web-a", "Token": mgmt, "Service": {"Service": "web"}}
        code, out = _http(a, "POST", "/v1/query", body, token=tok)
        assert code == 200, out
        qid = json.loads(out)["ID"]
        code, out = _http(a, "POST", "/v1/query",
                          {"Name": "db-a", "Service": {"Service": "db"}}, token=tok)
        assert code == 403 and "query:write" in out, out
        code, _ = _http(a, "POST", "/v1/query", {"Name": "web-b", "Service": {"Service": "web"}})
        assert code == 403

        # The query's token is shown to management only.
        code, out = _http(a, "GET", f"/v1/query/{qid}", token=tok)
        assert code == 200 and json.loads(out)[0]["Token"] == "<hidden>", out
        code, out = _http(a, "GET", f"/v1/query/{qid}", token=mgmt)
        assert json.loads(out)[0]["Token"] == mgmt
        # Anonymous reads nothing: the list is filtered, the query refused.
        code, out = _http(a, "GET", "/v1/query")
        assert (code, json.loads(out)) == (200, [])
        assert _http(a, "GET", f"/v1/query/{qid}")[0] == 403
        # Anyone who knows the name may execute; it runs with its token.
        code, out = _http(a, "GET", "/v1/query/web-a/execute")
        assert code == 200 and json.loads(out)["Service"] == "web", out
        assert _http(a, "DELETE", f"/v1/query/{qid}")[0] == 403
        assert _http(a, "DELETE", f"/v1/query/{qid}", token=tok)[0] == 200
    finally:
        a.stop()
        shutil.rmtree(d, ignore_errors=True)
