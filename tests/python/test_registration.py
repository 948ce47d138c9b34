"""Service and check registration as py-consul's documented calls make it:
tagged addresses, meta and weights kept from the agent to the catalog and
health endpoints, checks by name, numeric durations, `replace-existing-checks`,
`ContentHash` blocking, `EnableTagOverride`, the mesh endpoints of a
Consul without a mesh, and the agent's self, host and monitor."""

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import consul
import pytest

from conftest import Agent


@pytest.fixture(scope="module")
def agent():
    a = Agent(node="reg-node")
    yield a
    a.stop()


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def get(agent, path):
    with urllib.request.urlopen(f"http://{agent.http_addr}{path}", timeout=10) as r:
        return r.status, r.headers, json.loads(r.read())


TAGGED = {
    "lan": {"address": "10.0.0.5", "port": 8080},
    "wan": {"address": "198.51.100.5", "port": 80},
    "lan_ipv4": {"address": "10.0.0.5", "port": 8080},
    "wan_ipv6": {"address": "2001:db8::5", "port": 80},
}


def test_tagged_addresses_meta_and_weights_reach_agent_catalog_and_health(agent):
    c = client(agent)
    assert c.agent.service.register(
        "web", service_id="web-1", address="10.0.0.5", port=8080, tags=["v1"],
        meta={"team": "edge"}, weights={"passing": 10, "warning": 2},
        tagged_addresses=TAGGED,
    )
    svc = c.agent.services()["web-1"]
    assert svc["TaggedAddresses"]["wan"] == {"Address": "198.51.100.5", "Port": 80}
    assert svc["TaggedAddresses"]["wan_ipv6"] == {"Address": "2001:db8::5", "Port": 80}
    assert svc["Meta"] == {"team": "edge"}
    assert svc["Weights"] == {"Passing": 10, "Warning": 2}
    _, nodes = c.catalog.service("web")
    assert nodes[0]["ServiceTaggedAddresses"]["lan"] == {"Address": "10.0.0.5", "Port": 8080}
    assert nodes[0]["ServiceWeights"] == {"Passing": 10, "Warning": 2}
    assert nodes[0]["ServiceMeta"] == {"team": "edge"}
    _, entries = c.health.service("web")
    assert entries[0]["Service"]["TaggedAddresses"]["lan_ipv4"]["Port"] == 8080
    _, node = c.catalog.node(agent.node)
    assert node["Services"]["web-1"]["Weights"]["Passing"] == 10
    # Weights default to 1/1; a passing weight below 1 is refused.
    assert c.agent.service.register("plain", port=1)
    assert c.agent.services()["plain"]["Weights"] == {"Passing": 1, "Warning": 1}
    with pytest.raises(consul.base.ConsulException, match="Passing must be greater than 0"):
        c.agent.service.register("bad", weights={"passing": 0, "warning": 1})


def test_node_services_lists_the_nodes_services(agent):
    c = client(agent)
    c.agent.service.register("listed", service_id="listed-1", port=7)
    status, headers, body = get(agent, f"/v1/catalog/node-services/{agent.node}")
    assert status == 200 and int(headers["X-Consul-Index"]) > 0
    assert body["Node"]["Node"] == agent.node
    assert "listed-1" in [s["ID"] for s in body["Services"]]
    _, _, none = get(agent, "/v1/catalog/node-services/no-such-node")
    assert none == {"Node": None, "Services": []}


def test_checks_by_name_numeric_durations_and_unknown_service(agent):
    c = client(agent)
    c.agent.service.register("db", service_id="db-1", port=5432)
    # Two checks of one service registered by name: two checks.
    assert c.agent.check.register("db-ttl-a", check=consul.Check.ttl("30s"), service_id="db-1")
    assert c.agent.check.register("db-ttl-b", check=consul.Check.ttl("30s"), service_id="db-1")
    # Durations as Go clients send them: nanoseconds.
    assert c.agent.check.register(
        "db-tcp", check={"TCP": "127.0.0.1:1", "Interval": 10_000_000_000, "Timeout": 1_500_000_000},
        service_id="db-1")
    checks = c.agent.checks()
    assert {"db-ttl-a", "db-ttl-b", "db-tcp"} <= set(checks)
    assert checks["db-ttl-a"]["ServiceID"] == "db-1"
    assert checks["db-tcp"]["Interval"] == "10s"
    assert checks["db-tcp"]["Timeout"] == "1.5s"
    assert checks["db-ttl-a"]["Interval"] == "" and checks["db-ttl-a"]["Timeout"] == ""
    with pytest.raises(consul.base.ConsulException, match='ServiceID "nope" does not exist'):
        c.agent.check.register("orphan", check=consul.Check.ttl("10s"), service_id="nope")
    assert c.agent.check.ttl_pass("db-ttl-a", "ok")
    _, hc = c.health.checks("db")
    assert {h["CheckID"]: h["Status"] for h in hc}["db-ttl-a"] == "passing"


def test_replace_existing_checks(agent):
    c = client(agent)
    c.agent.service.register("cache", service_id="cache-1",
                             check=consul.Check.ttl("30s"))
    c.agent.check.register("cache-extra", check=consul.Check.ttl("30s"), service_id="cache-1")
    # Without the flag, a re-registration keeps the service's other checks.
    c.agent.service.register("cache", service_id="cache-1", tags=["x"])
    assert "cache-extra" in c.agent.checks()
    c.agent.service.register("cache", service_id="cache-1", tags=["y"],
                             check=consul.Check.ttl("30s"), replace_existing_checks=True)
    checks = c.agent.checks()
    assert "cache-extra" not in checks and "service:cache-1" in checks


def test_content_hash_blocks_until_the_service_changes(agent):
    c = client(agent)
    c.agent.service.register("hashed", service_id="hashed-1", port=1)
    status, headers, svc = get(agent, "/v1/agent/service/hashed-1")
    h = svc["ContentHash"]
    assert headers["X-Consul-ContentHash"] == h
    assert c.agent.service_definition("hashed-1")["ContentHash"] == h
    start = time.time()
    _, _, same = get(agent, f"/v1/agent/service/hashed-1?hash={h}&wait=300ms")
    assert same["ContentHash"] == h and time.time() - start >= 0.25
    result = {}

    def block():
        result["svc"] = get(agent, f"/v1/agent/service/hashed-1?hash={h}&wait=20s")[2]
        result["at"] = time.time()

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.3)
    changed_at = time.time()
    c.agent.service.register("hashed", service_id="hashed-1", port=2)
    t.join(15)
    assert result["svc"]["Port"] == 2 and result["svc"]["ContentHash"] != h
    assert result["at"] - changed_at < 5


def test_enable_tag_override_keeps_tags_set_in_the_catalog(agent):
    c = client(agent)
    for name, eto in (("eto", True), ("plain-tags", False)):
        c.agent.service.register(name, port=1, tags=["agent"], enable_tag_override=eto,
                                 check=consul.Check.ttl("30s"))
        c.catalog.register(agent.node, "127.0.0.1", skip_node_update=True,
                           service={"Service": name, "ID": name, "Port": 1, "Tags": ["catalog"],
                                    "EnableTagOverride": eto})
        # A check update writes the service again through anti-entropy.
        c.agent.check.ttl_pass(f"service:{name}")
    _, eto = c.catalog.service("eto")
    assert eto[0]["ServiceTags"] == ["catalog"]
    assert c.agent.services()["eto"]["Tags"] == ["catalog"]
    _, plain = c.catalog.service("plain-tags")
    assert plain[0]["ServiceTags"] == ["agent"]


def test_mesh_endpoints_answer_empty_with_index_and_peer_is_accepted(agent):
    c = client(agent)
    c.agent.service.register("meshy", port=1)
    index, nodes = c.catalog.connect("meshy")
    assert nodes == [] and int(index) > 0
    index, entries = c.health.connect("meshy")
    assert entries == [] and int(index) > 0
    index, entries = c.health.ingress("meshy")
    assert entries == [] and int(index) > 0
    _, entries = c.health.service("meshy", merge_central_config=True)
    assert len(entries) == 1
    _, entries = c.health.service("meshy", peer="elsewhere")
    assert entries == []
    _, nodes = c.catalog.service("meshy", peer="elsewhere")
    assert nodes == []


def test_agent_self_host_and_version_agree(agent):
    import subprocess
    from conftest import BIN
    c = client(agent)
    me = c.agent.self()
    cfg = me["Config"]
    assert cfg["Version"] and cfg["Revision"] and cfg["BuildDate"]
    assert int(me["Stats"]["agent"]["services"]) == len(c.agent.services())
    assert int(me["Stats"]["agent"]["checks"]) == len(c.agent.checks())
    assert me["Stats"]["consul"]["known_datacenters"] == "1"
    out = subprocess.run([BIN, "version"], capture_output=True, text=True, check=True).stdout
    assert f"v{cfg['Version']}" in out and f"Revision {cfg['Revision']}" in out
    assert f"Build Date {cfg['BuildDate']}" in out
    _, node = c.catalog.node(agent.node)
    assert node["Node"]["Meta"]["consul-version"] == cfg["Version"]
    _, _, host = get(agent, "/v1/agent/host")
    assert host["Memory"]["total"] > 0 and host["CPU"] and host["Host"]["os"] == "linux"
    assert host["Disk"]["total"] > 0


def test_monitor_streams_log_lines_at_the_level_asked(agent):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{agent.http_addr}/v1/agent/monitor?loglevel=loud", timeout=5)
    assert e.value.code == 400 and b"Unknown log level" in e.value.read()
    conn = http.client.HTTPConnection(agent.http_addr, timeout=10)
    conn.request("GET", "/v1/agent/monitor?loglevel=info")
    resp = conn.getresponse()
    assert resp.status == 200
    c = client(agent)
    # A reload is logged at info.
    assert c.agent.reload()
    deadline = time.time() + 10
    seen = []
    while time.time() < deadline:
        line = resp.readline().decode()
        seen.append(line)
        if "configuration reloaded" in line:
            break
    conn.close()
    assert any("[INFO]" in s and "configuration reloaded" in s for s in seen), seen


def test_session_create_with_null_fields(agent):
    c = client(agent)
    # Ansible's consul_session sends every optional field, null when unset.
    body = json.dumps({"Name": "n", "Node": None, "LockDelay": None, "Checks": None,
                       "Behavior": "release", "TTL": None}).encode()
    req = urllib.request.Request(f"http://{agent.http_addr}/v1/session/create", data=body,
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        sid = json.loads(r.read())["ID"]
    _, s = c.session.info(sid)
    assert s["Node"] == agent.node


def test_monitor_command_follows_the_log(agent):
    import subprocess
    from conftest import BIN
    p = subprocess.Popen([BIN, "monitor", "-log-level", "debug", "-http-addr", agent.http_addr],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        c = client(agent)
        deadline = time.time() + 10
        # The command may still be connecting: reload until its line shows.
        got = threading.Event()

        def read():
            for line in p.stdout:
                if "configuration reloaded" in line:
                    got.set()
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        while not got.is_set() and time.time() < deadline:
            c.agent.reload()
            got.wait(0.5)
        assert got.is_set()
    finally:
        p.kill()
        p.wait(5)
    bad = subprocess.run([BIN, "monitor", "-log-level", "loud", "-http-addr", agent.http_addr],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1 and "Unknown log level" in bad.stderr


def test_services_command_registers_definition_files(agent, tmp_path):
    import subprocess
    from conftest import BIN
    hcl = tmp_path / "edge.hcl"
    hcl.write_text('service {\n  name = "edge"\n  id = "edge-1"\n  port = 443\n'
                   '  tagged_addresses {\n    wan = { address = "203.0.113.9", port = 8443 }\n  }\n'
                   '  weights {\n    passing = 3\n    warning = 1\n  }\n'
                   '  check { ttl = "30s" }\n}\n')
    js = tmp_path / "more.json"
    js.write_text(json.dumps({"services": [{"name": "a1", "port": 1}, {"name": "a2", "port": 2}]}))
    run = lambda *a: subprocess.run([BIN, "services", *a, "-http-addr", agent.http_addr],
                                    capture_output=True, text=True, timeout=30)
    out = run("register", str(hcl), str(js))
    assert out.returncode == 0, out.stderr
    assert "Registered service: edge" in out.stdout and "Registered service: a2" in out.stdout
    c = client(agent)
    svc = c.agent.services()["edge-1"]
    assert svc["TaggedAddresses"]["wan"] == {"Address": "203.0.113.9", "Port": 8443}
    assert svc["Weights"] == {"Passing": 3, "Warning": 1}
    assert "service:edge-1" in c.agent.checks()
    bad = tmp_path / "bad.json"
    bad.write_text('{"service": {"name": "x", "colour": "red"}}')
    out = run("register", str(bad))
    assert out.returncode == 1 and "colour" in out.stderr
    out = run("deregister", str(js))
    assert out.returncode == 0, out.stderr
    assert not {"a1", "a2"} & set(c.agent.services())
