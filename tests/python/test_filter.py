"""`?filter=` through py-consul's own `filter_expr` arguments: what a
Python integration gets back, and the error it sees for a bad expression."""

import pytest

import consul


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


@pytest.fixture(scope="module")
def c(agent):
    c = client(agent)
    for node, env in (("f1", "prod"), ("f2", "qa")):
        # (py-consul sends `node_meta` as a query parameter the register
        # endpoint does not read, in Consul as here: no node meta.)
        assert c.catalog.register(
            node, f"10.1.0.{node[1]}",
            service={"Service": "shop", "ID": "shop", "Port": 7000, "Tags": [f"t-{env}"]},
            check={"CheckID": "shop-check", "Name": "shop", "ServiceID": "shop",
                   "Status": "passing" if env == "prod" else "critical"},
        )
    return c


def test_catalog_lists_take_filter_expr(c):
    _, nodes = c.catalog.nodes(filter_expr='Address == "10.1.0.1"')
    assert [n["Node"] for n in nodes] == ["f1"]
    _, services = c.catalog.services(filter_expr='ServiceTags contains "t-qa"')
    assert services == {"shop": ["t-qa"]}
    _, instances = c.catalog.service("shop", filter_expr=r"Address matches `\.2$`")
    assert [i["Node"] for i in instances] == ["f2"]
    _, node = c.catalog.node("f1", filter_expr="Port == 7000")
    assert list(node["Services"]) == ["shop"]
    _, node = c.catalog.node("f1", filter_expr="Port != 7000")
    assert node["Services"] == {}


def test_health_lists_take_filter_expr(c):
    _, entries = c.health.service("shop", filter_expr='Checks.Status == "critical"')
    assert [e["Node"]["Node"] for e in entries] == ["f2"]
    _, entries = c.health.service("shop", filter_expr='"passing" in Checks.Status')
    assert [e["Node"]["Node"] for e in entries] == ["f1"]
    _, checks = c.health.checks("shop", filter_expr="Node == f1")
    assert [ch["Status"] for ch in checks] == ["passing"]
    _, checks = c.health.state("critical", filter_expr="ServiceName == shop")
    assert [ch["Node"] for ch in checks] == ["f2"]
    _, checks = c.health.node("f2", filter_expr="Status == passing")
    assert checks == []


def test_agent_lists_take_filter_expr(agent):
    c = client(agent)
    # The fixture's agent runs web (blue) and api (v2) from its config dir.
    services = c.agent.services(filter_expr='"blue" in Tags')
    assert list(services) == ["web"]
    assert c.agent.checks(filter_expr="Name == nothing") == {}


def test_a_bad_expression_is_refused_with_where_it_broke(c):
    with pytest.raises(consul.ConsulException) as e:
        c.catalog.nodes(filter_expr="Meta.env ==")
    assert "1:12 (11)" in str(e.value)
    with pytest.raises(consul.ConsulException) as e:
        c.health.service("shop", filter_expr="Nope == 1")
    assert 'Selector "Nope" is not valid' in str(e.value)
