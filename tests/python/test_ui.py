"""The web UI in headless Chromium (Debian's chromium + chromedriver, driven
by Selenium): services with their health, a node, KV create/edit/delete
checked through the HTTP API, a check going critical without a reload,
API errors shown on the page, and under default deny the ACL token field
(kept in localStorage, sent as X-Consul-Token) and the permission messages. Screenshots of the main pages go to
target/ui-screenshots/."""

import json
import os
import shutil
import urllib.request

import pytest

from conftest import ROOT, Agent

selenium = pytest.importorskip("selenium")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = os.path.join(ROOT, "target", "ui-screenshots")


def http(agent, method, path, body=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://{agent.http_addr}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def ui_agent():
    a = Agent(node="ui-node")
    svc = {"Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["blue", "v2"],
           "Check": {"CheckID": "web-ttl", "Name": "web alive", "TTL": "10m"}}
    http(a, "PUT", "/v1/agent/service/register", json.dumps(svc))
    http(a, "PUT", "/v1/agent/check/pass/web-ttl?note=serving")
    http(a, "PUT", "/v1/catalog/register", json.dumps({
        "Node": "db-host", "Address": "10.0.0.9",
        "Service": {"Service": "db", "Port": 5432, "Tags": ["primary"]},
        "Check": {"CheckID": "db-up", "Name": "db up", "Status": "warning", "ServiceID": "db",
                  "Output": "replication lag 3 s"}}))
    a.wait_for("/v1/health/service/web", b"web alive")
    yield a
    a.stop()


@pytest.fixture(scope="module")
def browser():
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_bin = shutil.which("chromedriver")
    if not (chrome and driver_bin):
        pytest.skip("chromium and chromedriver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_bin), options=opts)
    d.set_page_load_timeout(30)
    os.makedirs(SHOTS, exist_ok=True)
    yield d
    d.quit()


def wait(browser, cond, timeout=15):
    # The pages re-render their rows on every blocking-query answer, so an
    # element found a moment ago can be gone: that is a retry, not a failure.
    return WebDriverWait(browser, timeout, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException)).until(cond)


def text_in(browser, css, text):
    return wait(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def shot(browser, name):
    browser.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def test_root_leads_to_the_services_page_with_health(ui_agent, browser):
    browser.get(f"http://{ui_agent.http_addr}/")
    wait(browser, EC.url_contains("/ui/dc1/services"))
    row = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-service="web"]')))
    text_in(browser, 'tr[data-service="web"]', "2 passing")
    assert "blue" in row.text
    text_in(browser, 'tr[data-service="db"]', "1 warning")
    # The filter box narrows the list without a request.
    box = browser.find_element(By.CSS_SELECTOR, "input[type=search]")
    box.send_keys("db")
    wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, 'tr[data-service="web"]'))
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/services")
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-service="web"]')))
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#dc-switch option")] == ["dc1"]
    shot(browser, "services")


def test_a_service_and_its_check_going_critical_without_reload(ui_agent, browser):
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/services/web")
    text_in(browser, '[data-check="web-ttl"]', "passing")
    text_in(browser, '[data-check="web-ttl"]', "serving")
    # Parts a page leaves out must not show up as the word "null".
    assert "null" not in browser.find_element(By.ID, "main").text
    shot(browser, "service")
    marker = browser.execute_script("window.__noReload = 1; return window.__noReload")
    assert marker == 1
    status, _ = http(ui_agent, "PUT", "/v1/agent/check/fail/web-ttl?note=disk%20full")
    assert status == 200
    text_in(browser, '[data-check="web-ttl"]', "critical")
    text_in(browser, '[data-check="web-ttl"]', "disk full")
    assert browser.execute_script("return window.__noReload") == 1, "the page was reloaded"
    http(ui_agent, "PUT", "/v1/agent/check/pass/web-ttl?note=serving")
    text_in(browser, '[data-check="web-ttl"]', "passing")


def test_nodes_and_a_node(ui_agent, browser):
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/nodes")
    text_in(browser, 'tr[data-node="db-host"]', "10.0.0.9")
    text_in(browser, 'tr[data-node="ui-node"]', "passing")
    shot(browser, "nodes")
    browser.find_element(By.LINK_TEXT, "ui-node").click()
    wait(browser, EC.url_contains("/ui/dc1/nodes/ui-node"))
    text_in(browser, "main", "serfHealth")
    text_in(browser, 'tr[data-service="web-1"]', "8080")
    shot(browser, "node")


def test_kv_create_edit_conflict_and_delete(ui_agent, browser):
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/kv/")
    form = wait(browser, EC.presence_of_element_located((By.ID, "kv-create")))
    form.find_element(By.NAME, "key").send_keys("app/config")
    form.find_element(By.NAME, "value").send_keys("color=blue")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, EC.url_contains("/ui/dc1/kv/app/config/edit"))
    status, body = http(ui_agent, "GET", "/v1/kv/app/config?raw")
    assert (status, body) == (200, b"color=blue")

    value = wait(browser, EC.presence_of_element_located((By.ID, "kv-value")))
    value.clear()
    value.send_keys("color=green")
    browser.find_element(By.ID, "kv-save").click()
    text_in(browser, ".result", "Saved")
    assert http(ui_agent, "GET", "/v1/kv/app/config?raw")[1] == b"color=green"
    shot(browser, "kv-edit")

    # Someone else writes in between: the UI's CAS refuses to overwrite.
    http(ui_agent, "PUT", "/v1/kv/app/config", "color=red")
    value.clear()
    value.send_keys("color=mine")
    browser.find_element(By.ID, "kv-save").click()
    text_in(browser, ".result", "changed by someone else")
    assert http(ui_agent, "GET", "/v1/kv/app/config?raw")[1] == b"color=red"

    # The folder lists the key; delete it from a fresh page.
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/kv/app/")
    text_in(browser, 'tr[data-key="app/config"]', "config")
    shot(browser, "kv")
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/kv/app/config/edit")
    wait(browser, EC.presence_of_element_located((By.ID, "kv-delete"))).click()
    browser.switch_to.alert.accept()
    wait(browser, EC.url_matches(r"/ui/dc1/kv/app/$"))
    assert http(ui_agent, "GET", "/v1/kv/app/config")[0] == 404


def test_api_errors_are_shown_on_the_page(ui_agent, browser):
    browser.get(f"http://{ui_agent.http_addr}/ui/nowhere/services")
    text_in(browser, ".error", "No path to datacenter")
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/nodes/ghost")
    text_in(browser, ".error", "ghost")
    # The error does not end the page: once the node exists it is drawn.
    http(ui_agent, "PUT", "/v1/catalog/register", json.dumps({"Node": "ghost", "Address": "10.0.0.66"}))
    text_in(browser, "main", "10.0.0.66")
    assert not browser.find_elements(By.CSS_SELECTOR, ".error")
    http(ui_agent, "PUT", "/v1/catalog/deregister", json.dumps({"Node": "ghost"}))
    browser.get(f"http://{ui_agent.http_addr}/ui/dc1/kv/missing/key/edit")
    text_in(browser, ".error", "does not exist")


def test_a_phone_sized_window_still_shows_the_list(ui_agent, browser):
    browser.set_window_size(390, 844)
    try:
        browser.get(f"http://{ui_agent.http_addr}/ui/dc1/services")
        row = wait(browser, EC.visibility_of_element_located((By.CSS_SELECTOR, 'tr[data-service="web"]')))
        assert row.size["width"] <= 390
        shot(browser, "services-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_the_datacenter_switcher_shows_another_datacenter(ui_agent, browser):
    from selenium.webdriver.support.ui import Select
    dc2 = Agent(extra_args=["-datacenter", "dc2", "-join-wan", f"127.0.0.1:{ui_agent.serf_wan_port}"],
                node="west-1")
    try:
        http(dc2, "PUT", "/v1/agent/service/register", json.dumps({"Name": "west-api", "Port": 7000}))
        dc2.wait_for("/v1/catalog/service/west-api", b"west-api")
        ui_agent.wait_for("/v1/catalog/datacenters", b"dc2")
        browser.get(f"http://{ui_agent.http_addr}/ui/dc1/services")
        wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#dc-switch option")) == 2)
        Select(browser.find_element(By.ID, "dc-switch")).select_by_value("dc2")
        wait(browser, EC.url_contains("/ui/dc2/services"))
        text_in(browser, 'tr[data-service="west-api"]', "west-api")
        assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-service="web"]')
        browser.find_element(By.LINK_TEXT, "west-api").click()
        text_in(browser, "main", "west-1")
    finally:
        dc2.stop()


def test_the_federation_page_shows_every_datacenter_live(ui_agent, browser):
    """Three datacenters on one page: leaders, servers, round trips and
    each service's health per datacenter; a frozen datacenter turns red
    without a reload, and comes back."""
    import signal
    import time
    join = ["-join-wan", f"127.0.0.1:{ui_agent.serf_wan_port}"]
    dc2 = Agent(extra_args=["-datacenter", "dc2", *join], node="fed-west")
    dc3 = Agent(extra_args=["-datacenter", "dc3", *join], node="fed-east")
    try:
        http(dc2, "PUT", "/v1/agent/service/register", json.dumps(
            {"Name": "web", "Port": 80, "Check": {"TTL": "10m", "Status": "passing"}}))
        http(dc3, "PUT", "/v1/agent/service/register", json.dumps(
            {"Name": "web", "Port": 80, "Check": {"TTL": "10m", "Status": "critical"}}))
        dc3.wait_for("/v1/health/service/web", b"critical")
        deadline = time.time() + 30
        while True:
            _, body = http(ui_agent, "GET", "/v1/catalog/datacenters")
            if all(dc.encode() in body for dc in ("dc2", "dc3")):
                break
            assert time.time() < deadline, body
            time.sleep(0.2)
        browser.get(f"http://{ui_agent.http_addr}/ui/dc1/federation")
        text_in(browser, "h1", "Federation")
        for dc in ("dc1", "dc2", "dc3"):
            wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f'#fed-dcs tr[data-dc="{dc}"]')))
        text_in(browser, '#fed-dcs tr[data-dc="dc2"] td.leader', "127.0.0.1:")
        text_in(browser, '#fed-dcs tr[data-dc="dc2"]', "fed-west")
        # web: passing in dc1 (ui_agent's), passing in dc2, critical in dc3.
        text_in(browser, '#fed-services tr[data-service="web"] td[data-dc="dc2"]', "passing")
        text_in(browser, '#fed-services tr[data-service="web"] td[data-dc="dc3"]', "critical")
        # Round trips come from the servers' coordinates, a few seconds in.
        wait(browser, lambda b: "ms" in b.find_element(
            By.CSS_SELECTOR, '#fed-rtt tr[data-rtt-from="dc1"] td[data-rtt-to="dc2"]').text, timeout=40)
        shot(browser, "federation")
        # A change in dc2 appears without a reload (dc2's blocking query).
        http(dc2, "PUT", "/v1/agent/service/register", json.dumps(
            {"Name": "api", "Port": 81, "Check": {"TTL": "10m", "Status": "warning"}}))
        text_in(browser, '#fed-services tr[data-service="api"] td[data-dc="dc2"]', "warning")
        # dc3 frozen: its row says so within the page's refresh.
        os.kill(dc3.proc.pid, signal.SIGSTOP)
        try:
            wait(browser, lambda b: b.find_element(
                By.CSS_SELECTOR, '#fed-dcs tr[data-dc="dc3"]').get_attribute("data-reachable") == "false",
                timeout=20)
            shot(browser, "federation-dc3-down")
        finally:
            os.kill(dc3.proc.pid, signal.SIGCONT)
        wait(browser, lambda b: b.find_element(
            By.CSS_SELECTOR, '#fed-dcs tr[data-dc="dc3"]').get_attribute("data-reachable") == "true",
            timeout=20)
    finally:
        dc2.stop()
        dc3.stop()


ACL_ROOT = "5b0b4a4e-7c7e-4d59-9a55-2f0e9d0b7e11"


@pytest.fixture(scope="module")
def acl_ui_agent():
    """An agent under default deny whose agent token (the management one)
    has put service web in the catalog."""
    import tempfile
    import time
    d = tempfile.mkdtemp(prefix="meridian-ui-acl-")
    with open(os.path.join(d, "acl.hcl"), "w") as f:
        f.write('acl {\n  enabled = true\n  default_policy = "deny"\n'
                f'  tokens {{\n    initial_management = "{ACL_ROOT}"\n    agent = "{ACL_ROOT}"\n  }}\n}}\n')
    with open(os.path.join(d, "web.json"), "w") as f:
        f.write('{"service": {"name": "web", "port": 8080}}\n')
    a = Agent(config_dir=d, node="ui-acl-node", ephemeral=True,
              ready=("/v1/status/leader", b'"127.0.0.1:'))
    deadline = time.time() + 30
    while b"web" not in http(a, "GET", f"/v1/catalog/services?token={ACL_ROOT}")[1]:
        assert time.time() < deadline, "web never reached the catalog"
        time.sleep(0.1)
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_under_default_deny_the_ui_says_so_until_a_token_is_set(acl_ui_agent, browser):
    base = f"http://{acl_ui_agent.http_addr}"
    # Without a token the list is filtered: the page says why, not just "0".
    browser.get(f"{base}/ui/dc1/services")
    text_in(browser, ".acl-filtered", "Permission denied")
    text_in(browser, ".acl-filtered", "No ACL token is set")
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-service="web"]')
    text_in(browser, "#token-state", "no token")
    shot(browser, "services-acl-denied")

    # A 403 shows the agent's text: the permission and what decided.
    browser.get(f"{base}/ui/dc1/kv/app/config/edit")
    text_in(browser, ".error", "lacks permission 'key:read'")
    text_in(browser, ".error", 'default_policy "deny"')
    shot(browser, "kv-acl-denied")

    # The management token, entered once, is kept and sent on every call.
    browser.get(f"{base}/ui/dc1/services")
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".acl-filtered")))
    browser.find_element(By.ID, "token-input").send_keys(ACL_ROOT)
    browser.find_element(By.ID, "token-set").click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-service="web"]')))
    assert not browser.find_elements(By.CSS_SELECTOR, ".acl-filtered")
    assert browser.execute_script("return localStorage.getItem('meridian:token')") == ACL_ROOT
    text_in(browser, "#token-state", "token set")
    browser.get(f"{base}/ui/dc1/kv/app/config/edit")
    text_in(browser, ".error", "does not exist")
    browser.get(f"{base}/ui/dc1/services")
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-service="web"]')))
    shot(browser, "services-acl-token")

    # Cleared, the page is back to what the anonymous token may see.
    browser.find_element(By.ID, "token-clear").click()
    text_in(browser, ".acl-filtered", "Permission denied")
    assert browser.execute_script("return localStorage.getItem('meridian:token')") is None
