"""The ACL API through py-consul (`Consul.acl`): bootstrap, tokens,
policies and roles as a Consul client library drives them."""

import os
import shutil
import tempfile
import uuid

import consul
import pytest
from consul.exceptions import ACLDisabled, ACLPermissionDenied, ConsulException

from conftest import Agent


def client(agent, token=None):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port), token=token)


@pytest.fixture(scope="module")
def acl_agent():
    d = tempfile.mkdtemp(prefix="meridian-acl-")
    with open(os.path.join(d, "acl.hcl"), "w") as f:
        f.write("acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n")
    # The status endpoints are open under default deny: ready = a leader.
    a = Agent(config_dir=d, node="pytest-acl", ready=("/v1/status/leader", b'"127.0.0.1:'))
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_acl_endpoints_say_acls_are_disabled(agent):
    with pytest.raises(ACLDisabled, match="ACL support disabled"):
        client(agent).acl.bootstrap()
    with pytest.raises(ACLDisabled):
        client(agent).acl.token.list()


def test_bootstrap_then_tokens_policies_and_roles(acl_agent):
    c = client(acl_agent)
    boot = c.acl.bootstrap()
    assert boot["Description"] == "Bootstrap Token (Global Management)"
    assert boot["Policies"][0]["Name"] == "global-management"
    with pytest.raises(ACLPermissionDenied, match=r"ACL bootstrap no longer allowed \(reset index: \d+\)"):
        c.acl.bootstrap()

    c = client(acl_agent, token=boot["SecretID"])
    assert c.acl.token.read_self()["AccessorID"] == boot["AccessorID"]

    # py-consul sends the rules as JSON text, under lower-case names.
    policy = c.acl.policy.create(
        "kv-read", description="read kv", rules={"key_prefix": {"": {"policy": "read"}}}
    )
    assert c.acl.policy.read(policy["ID"])["Name"] == "kv-read"
    assert '"key_prefix"' in c.acl.policy.read(policy["ID"])["Rules"]
    names = {p["Name"] for p in c.acl.policy.list()}
    assert {"global-management", "builtin/global-read-only", "kv-read"} <= names
    updated = c.acl.policy.update(policy["ID"], "kv-read2", description="renamed")
    assert updated["Name"] == "kv-read2"

    role = c.acl.role.create("readers", policies_id=[policy["ID"]])
    assert c.acl.role.read_by_name("readers")["ID"] == role["ID"]
    assert [r["ID"] for r in c.acl.role.list(policy=policy["ID"])] == [role["ID"]]

    accessor, secret = str(uuid.uuid4()), str(uuid.uuid4())
    token = c.acl.token.create(
        accessor_id=accessor,
        secret_id=secret,
        description="web",
        policies_name=["kv-read2"],
        roles_id=[role["ID"]],
        service_identities=[{"ServiceName": "web"}],
    )
    assert (token["AccessorID"], token["SecretID"]) == (accessor, secret)
    assert token["Policies"][0]["ID"] == policy["ID"]
    assert c.acl.token.read(accessor)["Description"] == "web"
    assert {t["AccessorID"] for t in c.acl.token.list(servicename="web")} == {accessor}
    assert client(acl_agent, token=secret).acl.token.read_self()["AccessorID"] == accessor

    with pytest.raises(ConsulException, match='No such ACL policy with name "missing"'):
        c.acl.token.create(policies_name=["missing"])

    # An update replaces the token's links and identities, as in Consul.
    updated = c.acl.token.update(accessor, description="web2", policies_name=["kv-read2"])
    assert updated["Description"] == "web2" and updated["SecretID"] == secret

    clone = c.acl.token.clone(accessor, description="copy")
    assert clone["AccessorID"] != accessor and clone["Description"] == "copy"
    listed = {t["AccessorID"] for t in c.acl.token.list(policy=policy["ID"])}
    assert listed == {accessor, clone["AccessorID"]}

    assert c.acl.token.delete(clone["AccessorID"]) is True
    # A 404, which py-consul reads as None.
    assert c.acl.token.read(clone["AccessorID"]) is None
    assert c.acl.token.delete(accessor) is True
    assert c.acl.role.delete(role["ID"]) is True
    assert c.acl.role.read(role["ID"]) is None
    assert c.acl.policy.delete(policy["ID"]) is True
    assert c.acl.policy.read(policy["ID"]) is None
