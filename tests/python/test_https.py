"""py-consul over the agent's HTTPS listener, with the CA and a client
certificate from `meridian tls`, as a Consul user would connect."""

import consul
import pytest
import requests


def test_py_consul_puts_and_gets_over_https_with_a_client_certificate(https_agent):
    agent, certs = https_agent
    assert agent.https_port, "the agent's listening line names no https port"
    c = consul.Consul(host="127.0.0.1", port=agent.https_port, scheme="https",
                      verify=certs["ca"], cert=certs["client"])
    assert c.kv.put("tls/greeting", "hello over tls") is True
    _, got = c.kv.get("tls/greeting")
    assert got["Value"] == b"hello over tls"
    # The same key over plain HTTP: one agent, two listeners.
    plain = consul.Consul(host="127.0.0.1", port=agent.http_port)
    assert plain.kv.get("tls/greeting")[1]["Value"] == b"hello over tls"


def test_py_consul_without_a_client_certificate_is_refused(https_agent):
    agent, certs = https_agent
    c = consul.Consul(host="127.0.0.1", port=agent.https_port, scheme="https", verify=certs["ca"])
    with pytest.raises(requests.exceptions.ConnectionError):
        c.kv.get("tls/greeting")


def test_py_consul_refuses_an_agent_its_ca_did_not_sign(https_agent, tmp_path):
    agent, certs = https_agent
    from conftest import make_certs
    other = make_certs(str(tmp_path))
    c = consul.Consul(host="127.0.0.1", port=agent.https_port, scheme="https",
                      verify=other["ca"], cert=certs["client"])
    with pytest.raises(requests.exceptions.SSLError):
        c.kv.get("tls/greeting")
