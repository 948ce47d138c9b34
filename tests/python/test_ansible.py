"""Ansible's community.general Consul modules (consul_kv, consul_session,
consul_agent_service, consul_agent_check) run by `ansible-playbook`
against a dev agent, as an operator's playbook drives Consul: register,
update and deregister, each run twice, the second reporting no change."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import pytest

from conftest import Agent

PLAYBOOK = shutil.which("ansible-playbook")
pytestmark = pytest.mark.skipif(PLAYBOOK is None, reason="ansible not installed (pip install ansible)")


@pytest.fixture(scope="module")
def agent():
    a = Agent(node="ansible-node")
    yield a
    a.stop()


def play(agent, tasks):
    """Runs `tasks` on localhost; each task's result, in order."""
    host, port = agent.http_addr.split(":")
    book = [{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "module_defaults": {
            "group/community.general.consul": {"host": host, "port": int(port)},
            "community.general.consul_kv": {"host": host, "port": int(port)},
        },
        "tasks": tasks,
    }]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(book, f)  # YAML is a superset of JSON
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    try:
        out = subprocess.run([PLAYBOOK, "-i", "localhost,", f.name], capture_output=True,
                             text=True, timeout=120, env=env)
    finally:
        os.unlink(f.name)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    return [t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]]


def changed(results):
    return [r.get("changed") for r in results]


def service(state, tags):
    return {"community.general.consul_agent_service": {
        "state": state, "name": "nginx", "id": "nginx-1", "service_port": 80,
        "address": "10.1.5.23", "tags": tags, "meta": {"nginx_version": "1.25.3"}}}


def check(state, interval):
    return {"community.general.consul_agent_check": {
        "state": state, "name": "nginx-tcp", "id": "nginx-tcp", "service_id": "nginx-1",
        "tcp": "127.0.0.1:1", "interval": interval, "notes": "Nginx Check"}}


def kv(state, value):
    return {"community.general.consul_kv": {"key": "ansible/nginx", "value": value, "state": state}}


def agent_checks(agent):
    with urllib.request.urlopen(f"http://{agent.http_addr}/v1/agent/checks", timeout=10) as r:
        return json.loads(r.read())


def test_register_update_deregister_are_idempotent(agent):
    # consul_agent_check documents that a present check always reports a
    # change (Consul's API does not give back a check's probe to compare),
    # so its register and update runs are checked by what the agent holds.
    register = [service("present", ["prod"]), check("present", "60s"), kv("present", "v1")]
    assert changed(play(agent, register)) == [True, True, True]
    assert changed(play(agent, register)) == [False, True, False]
    checks = agent_checks(agent)
    assert checks["nginx-tcp"]["ServiceID"] == "nginx-1" and checks["nginx-tcp"]["Interval"] == "1m0s"

    update = [service("present", ["prod", "web"]), check("present", "30s"), kv("present", "v2")]
    assert changed(play(agent, update)) == [True, True, True]
    assert changed(play(agent, update)) == [False, True, False]
    assert agent_checks(agent)["nginx-tcp"]["Interval"] == "30s"

    deregister = [check("absent", "30s"), service("absent", ["prod", "web"]), kv("absent", "v2")]
    assert changed(play(agent, deregister)) == [True, True, True]
    assert changed(play(agent, deregister)) == [False, False, False]
    assert "nginx-tcp" not in agent_checks(agent)


def test_sessions_are_created_listed_and_removed(agent):
    # consul_session sends every optional field (`"Node": null` among
    # them); creating a session is a change every time, by design.
    session = "community.general.consul_session"
    created, listed, on_node, removed, after = play(agent, [
        {session: {"name": "ansible-lock", "behavior": "delete", "ttl": 60}, "register": "created"},
        {session: {"state": "list"}},
        {session: {"state": "node", "name": agent.node, "node": agent.node}},
        {session: {"state": "absent", "id": "{{ created.session_id }}"}},
        {session: {"state": "list"}},
    ])
    sid = created["session_id"]
    assert sid in [s["ID"] for s in listed["sessions"]]
    assert sid in [s["ID"] for s in on_node["sessions"]]
    assert removed["changed"] is True
    assert sid not in [s["ID"] for s in after["sessions"]]
