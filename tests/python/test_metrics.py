"""`/v1/agent/metrics` as monitoring tools use it: Consul's JSON summary,
the Prometheus text checked by Debian's `promtool check metrics`, and a
real Prometheus server scraping the agent with a static_config and
answering queries for a Raft and a KV metric."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import consul
import pytest

from conftest import Agent, free_port


def get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


@pytest.fixture(scope="module")
def metrics_agent():
    d = tempfile.mkdtemp(prefix="meridian-conf-")
    with open(os.path.join(d, "telemetry.hcl"), "w") as f:
        f.write('telemetry {\n  prometheus_retention_time = "60s"\n  disable_hostname = true\n}\n')
    a = Agent(config_dir=d, node="metrics-node")
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def kv_writes(agent, n=5):
    host, port = agent.http_addr.split(":")
    c = consul.Consul(host=host, port=int(port))
    for i in range(n):
        assert c.kv.put(f"metrics/k{i}", f"v{i}") is True
    return c


def test_json_summary_has_consuls_shape_and_real_figures(metrics_agent):
    kv_writes(metrics_agent)
    base = f"http://{metrics_agent.http_addr}/v1/agent/metrics"
    # The summary is of the last finished 10-second interval: the writes
    # show once theirs is over.
    deadline = time.time() + 25
    while True:
        status, headers, body = get(base)
        assert status == 200, body
        assert headers.get("Content-Type").startswith("application/json")
        m = json.loads(body)
        samples = {s["Name"]: s for s in m["Samples"]}
        if "consul.kvs.apply" in samples or time.time() > deadline:
            break
        time.sleep(0.5)
    assert set(m) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", m["Timestamp"]), m["Timestamp"]
    kv = samples["consul.kvs.apply"]
    assert kv["Count"] >= 1 and kv["Max"] >= kv["Min"] >= 0, kv
    for k in ("Rate", "Sum", "Mean", "Stddev", "Labels"):
        assert k in kv, kv
    gauges = {(g["Name"], tuple(sorted(g["Labels"].items()))): g["Value"] for g in m["Gauges"]}
    # disable_hostname: no host name between the prefix and the name.
    assert gauges[("consul.state.kv_entries", ())] >= 5
    assert gauges[("consul.state.nodes", ())] >= 1
    assert gauges[("consul.raft.applied_index", ())] > 0
    assert gauges[("consul.runtime.resident_memory_bytes", ())] > 1_000_000
    http = [s for s in m["Samples"] if s["Name"] == "consul.api.http"]
    assert any(s["Labels"] == {"method": "PUT", "path": "v1_kv_"} for s in http), http


def test_prometheus_is_refused_without_a_retention_time(agent):
    status, _, body = get(f"http://{agent.http_addr}/v1/agent/metrics?format=prometheus")
    assert status == 415, body
    assert "retention time is not positive" in body


def test_promtool_accepts_the_exposition(metrics_agent):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus)")
    kv_writes(metrics_agent, 2)
    status, headers, text = get(f"http://{metrics_agent.http_addr}/v1/agent/metrics?format=prometheus")
    assert status == 200, text
    assert headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    for name in ("consul_raft_apply", "consul_raft_commitTime_count", "consul_kvs_apply_count",
                 "consul_state_kv_entries", "process_resident_memory_bytes", "process_open_fds",
                 "process_threads"):
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", text, re.M), f"{name} missing:\n{text}"
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=20)
    problems = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
    # Exit 1 would be a parse failure. Consul's own names (camelCase such as
    # consul_raft_commitTime, counters without `_total`) are what dashboards
    # built for Consul query, and promtool's style lint (exit 3) names them;
    # any other finding (no HELP, bad units, reserved labels) fails here.
    assert out.returncode in (0, 3), problems
    consul_style = re.compile(
        r"^(consul_\S+) (metric names should be written in 'snake_case' not 'camelCase'"
        r'|counter metrics should have "_total" suffix)$')
    others = [p for p in problems if not consul_style.match(p)]
    assert others == [], others


def test_a_prometheus_server_scrapes_the_agent(metrics_agent, tmp_path):
    prom = shutil.which("prometheus")
    if not prom:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: meridian
    metrics_path: /v1/agent/metrics
    params:
      format: [prometheus]
    static_configs:
      - targets: ["{metrics_agent.http_addr}"]
""")
    log = open(tmp_path / "prometheus.log", "w")
    p = subprocess.Popen([
        prom, f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ], stdout=log, stderr=subprocess.STDOUT)
    try:
        kv_writes(metrics_agent, 5)
        api = f"http://127.0.0.1:{port}/api/v1/query?query="

        def value(query):
            try:
                status, _, body = get(api + urllib.parse.quote(query))
            except OSError:  # Prometheus still starting
                return None
            if status != 200:
                return None
            result = json.loads(body)["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        found = {}
        deadline = time.time() + 25
        wanted = {"raft": "consul_raft_apply", "kv": "consul_kvs_apply_count",
                  "up": 'up{job="meridian"}'}
        while time.time() < deadline and len(found) < len(wanted):
            for k, q in wanted.items():
                v = value(q)
                if v is not None and v > 0:
                    found[k] = v
            time.sleep(0.5)
        log.flush()
        assert set(found) == set(wanted), (found, open(tmp_path / "prometheus.log").read()[-3000:])
        assert found["kv"] >= 5
    finally:
        p.kill()
        p.wait(timeout=10)
        log.close()
