"""Gossip key rotation driven by py-consul's operator keyring calls, as an
operator's script would: install, use, remove, list, and the refusals."""

import subprocess

import consul
import consul.exceptions
import pytest

from conftest import BIN, Agent


def keygen():
    return subprocess.run([BIN, "keygen"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def encrypted():
    key = keygen()
    a = Agent(extra_args=["-encrypt", key], node="keyring-node", ephemeral=True)
    yield a, key
    a.stop()


def test_rotation_through_py_consul(encrypted):
    agent, old = encrypted
    host, port = agent.http_addr.split(":")
    c = consul.Consul(host=host, port=int(port))
    new = keygen()

    rings = c.operator.keyring_list()
    assert sorted(r["WAN"] for r in rings) == [False, True]
    for r in rings:
        assert r["Datacenter"] == "dc1" and r["Segment"] == ""
        assert r["Keys"] == {old: 1} and r["PrimaryKeys"] == {old: 1} and r["NumNodes"] == 1

    assert c.operator.keyring_install(new) is True
    assert c.operator.keyring_use(new, relay_factor=1) is True
    with pytest.raises(consul.ConsulException, match="Removing the primary key is not allowed"):
        c.operator.keyring_remove(new)
    assert c.operator.keyring_remove(old) is True

    lan = c.operator.keyring_list(local_only=True)
    assert len(lan) == 1 and lan[0]["WAN"] is False
    assert lan[0]["Keys"] == {new: 1} and lan[0]["PrimaryKeys"] == {new: 1}

    with pytest.raises(consul.exceptions.BadRequest, match="Invalid key"):
        c.operator.keyring_install("not-a-key")
    with pytest.raises(consul.exceptions.BadRequest, match="Relay factor must be in range"):
        c.operator.keyring_list(relay_factor=9)
