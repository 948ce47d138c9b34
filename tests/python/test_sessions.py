"""Sessions and KV locks through py-consul: what Patroni, Vault and
`consul lock` rely on."""

import time

import consul


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def test_sessions_hold_locks_release_them_and_expire(agent):
    c = client(agent)
    a = c.session.create(name="holder-a", lock_delay=0, ttl=10)
    b = c.session.create(name="holder-b", lock_delay=0, behavior="delete")
    assert a != b
    _, info = c.session.info(a)
    assert info["Name"] == "holder-a" and info["TTL"] == "10s" and info["Behavior"] == "release"
    assert info["NodeChecks"] == ["serfHealth"]
    _, sessions = c.session.list()
    assert {s["ID"] for s in sessions} >= {a, b}
    _, on_node = c.session.node(agent.node)
    assert {s["ID"] for s in on_node} >= {a, b}

    # One holder at a time; the entry says who holds it.
    assert c.kv.put("locks/leader", "a", acquire=a) is True
    assert c.kv.put("locks/leader", "b", acquire=b) is False
    _, e = c.kv.get("locks/leader")
    assert e["Session"] == a and e["LockIndex"] == 1 and e["Value"] == b"a"
    assert c.kv.put("locks/leader", "x", release=b) is False
    assert c.kv.put("locks/leader", "", release=a) is True
    _, e = c.kv.get("locks/leader")
    assert "Session" not in e
    assert c.kv.put("locks/leader", "b", acquire=b) is True
    assert c.kv.get("locks/leader")[1]["LockIndex"] == 2

    # Renew answers the session; an unknown one is a 404.
    assert c.session.renew(a)["ID"] == a
    try:
        c.session.renew("00000000-0000-0000-0000-000000000000")
        raise AssertionError("renewed an unknown session")
    except consul.NotFound:
        pass

    # Destroying b (behavior delete) deletes the key it held.
    assert c.session.destroy(b) is True
    assert c.kv.get("locks/leader")[1] is None
    assert c.session.info(b)[1] is None


def test_a_lock_delay_holds_the_key_after_invalidation(agent):
    c = client(agent)
    s1 = c.session.create(lock_delay=2)
    assert c.kv.put("locks/delayed", "1", acquire=s1) is True
    c.session.destroy(s1)
    s2 = c.session.create(lock_delay=0)
    assert c.kv.put("locks/delayed", "2", acquire=s2) is False
    deadline = time.time() + 10
    while time.time() < deadline and not c.kv.put("locks/delayed", "2", acquire=s2):
        time.sleep(0.2)
    assert c.kv.get("locks/delayed")[1]["Session"] == s2
    c.session.destroy(s2)


def test_bad_sessions_get_consul_errors(agent):
    c = client(agent)
    # py-consul refuses a 5 s TTL itself; the agent must too.
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://{agent.http_addr}/v1/session/create",
                                 data=b'{"TTL": "5s"}', method="PUT")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a 5 s TTL was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert "Invalid Session TTL '5s', must be between [10s=24h0m0s]" in e.read().decode()
    try:
        c.kv.put("locks/x", "1", acquire="00000000-0000-0000-0000-000000000000")
        raise AssertionError("an unknown session acquired")
    except consul.ConsulException as e:
        assert "invalid session" in str(e)
