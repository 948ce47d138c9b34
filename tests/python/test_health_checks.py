"""Health checks against real endpoints run by software we did not write:
Python's http.server (the `mysrv` tutorial), a plain TCP listener, shell
scripts, and grpcio's standard health service; observed through py-consul
and dig."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import consul
import pytest

from conftest import BIN, Agent, free_port


def wait_until(what, timeout, pred):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def serve_http(port):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def client(agent):
    host, port = agent.http_addr.split(":")
    return consul.Consul(host=host, port=int(port))


def passing_nodes(c, name):
    _, nodes = c.health.service(name, passing=True)
    return nodes


def test_mysrv_tutorial_http_check_dns_and_reload():
    port = free_port()
    srv = serve_http(port)
    conf = tempfile.mkdtemp(prefix="meridian-mysrv-")
    with open(os.path.join(conf, "mysrv.json"), "w") as f:
        json.dump({"service": {"name": "mysrv", "port": port, "check": {
            "http": f"http://127.0.0.1:{port}/health", "interval": "1s"}}}, f)
    agent = Agent(config_dir=conf, wait_for_service="mysrv")
    try:
        c = client(agent)
        wait_until("mysrv passing", 10, lambda: len(passing_nodes(c, "mysrv")) == 1)
        _, checks = c.health.checks("mysrv")
        assert checks[0]["Output"].startswith(f"HTTP GET http://127.0.0.1:{port}/health: 200 OK")
        assert "127.0.0.1" in agent.dig("+short", "mysrv.service.consul")

        # The endpoint goes away: DNS stops answering for it.
        srv.shutdown()
        srv.server_close()
        down = time.time()
        gone = wait_until("DNS drops mysrv", 10,
                          lambda: agent.dig("+short", "mysrv.service.consul").strip() == "")
        print(f"endpoint down to DNS without it: {gone - down:.2f} s (interval 1 s)")
        _, checks = c.health.checks("mysrv")
        assert checks[0]["Status"] == "critical"
        assert "refused" in checks[0]["Output"].lower()

        # Back up: back in DNS.
        srv = serve_http(port)
        wait_until("DNS answers again", 10,
                   lambda: "127.0.0.1" in agent.dig("+short", "mysrv.service.consul"))

        # A second service in a new file, picked up by `meridian reload`.
        with open(os.path.join(conf, "other.json"), "w") as f:
            json.dump({"service": {"name": "other", "port": 1}}, f)
        out = subprocess.run([BIN, "reload", "-http-addr", agent.http_addr],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "Configuration reload triggered"
        wait_until("other registered", 10, lambda: c.catalog.service("other")[1] != [])
        # The unchanged HTTP check kept its state through the reload.
        assert len(passing_nodes(c, "mysrv")) == 1
    finally:
        srv.shutdown()
        agent.stop()
        shutil.rmtree(conf, ignore_errors=True)


def test_ttl_check_passes_when_told_and_expires(agent):
    c = client(agent)
    assert c.agent.service.register("ttl-svc", service_id="ttl-svc", port=1,
                                    check=consul.Check.ttl("2s"))
    c.agent.check.ttl_pass("service:ttl-svc", notes="all good")
    wait_until("ttl passing", 5, lambda: len(passing_nodes(c, "ttl-svc")) == 1)
    _, checks = c.health.checks("ttl-svc")
    assert checks[0]["Output"] == "all good"
    # No more updates: critical within two TTLs.
    wait_until("ttl expired", 6,
               lambda: c.health.checks("ttl-svc")[1][0]["Status"] == "critical")
    assert c.health.checks("ttl-svc")[1][0]["Output"] == "TTL expired"
    c.agent.check.ttl_warn("service:ttl-svc")
    wait_until("ttl warning", 5,
               lambda: c.health.checks("ttl-svc")[1][0]["Status"] == "warning")
    # An unknown check is a 404, which py-consul reports as False.
    assert c.agent.check.ttl_pass("no-such-check") is False
    c.agent.service.deregister("ttl-svc")


def test_tcp_check_follows_a_listener(agent):
    c = client(agent)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    assert c.agent.service.register("tcp-svc", port=port,
                                    check=consul.Check.tcp("127.0.0.1", port, "1s", timeout="1s"))
    wait_until("tcp passing", 5, lambda: len(passing_nodes(c, "tcp-svc")) == 1)
    sock.close()
    wait_until("tcp critical", 5, lambda: len(passing_nodes(c, "tcp-svc")) == 0)
    assert "TCP" in c.health.checks("tcp-svc")[1][0]["Output"] or \
        "refused" in c.health.checks("tcp-svc")[1][0]["Output"]
    c.agent.service.deregister("tcp-svc")


def test_script_checks_map_exit_codes_and_are_refused_when_disabled(agent):
    c = client(agent)
    # The module's agent runs without enable_script_checks.
    with pytest.raises(consul.ConsulException) as refused:
        c.agent.check.register("nope", check=consul.Check.script(["/bin/true"], "1s"))
    assert "Scripts are disabled" in str(refused.value)
    scripts = Agent(extra_args=["-enable-script-checks"])
    try:
        c = client(scripts)
        for name, code, status in [("ok", 0, "passing"), ("warn", 1, "warning"), ("bad", 2, "critical")]:
            assert c.agent.check.register(
                name, check=consul.Check.script(["/bin/sh", "-c", f"echo {name}; exit {code}"], "1s"))
        def states():
            _, checks = c.health.node("pytest-node")
            return {ch["CheckID"]: (ch["Status"], ch["Output"]) for ch in checks}
        wait_until("script results", 6, lambda: all(
            states().get(n, ("",))[0] == s for n, _, s in
            [("ok", 0, "passing"), ("warn", 1, "warning"), ("bad", 2, "critical")]))
        assert states()["warn"][1].strip() == "warn"
        # A script that hangs is killed at its timeout and marked critical.
        assert c.agent.check.register(
            "slow", check={"Args": ["/bin/sleep", "30"], "Interval": "2s", "Timeout": "500ms"})
        wait_until("hung script critical", 6,
                   lambda: "Timed out" in states().get("slow", ("", ""))[1])
    finally:
        scripts.stop()


def test_grpc_check_against_grpcio_health_service(agent):
    grpc = pytest.importorskip("grpc")
    health = pytest.importorskip("grpc_health.v1.health")
    health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
    health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("mysvc", health_pb2.HealthCheckResponse.SERVING)
    c = client(agent)
    try:
        assert c.agent.service.register("grpc-svc", port=port,
                                        check=consul.Check.grpc(f"127.0.0.1:{port}/mysvc", "1s"))
        wait_until("grpc passing", 6, lambda: len(passing_nodes(c, "grpc-svc")) == 1)
        servicer.set("mysvc", health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_until("grpc critical", 6, lambda: len(passing_nodes(c, "grpc-svc")) == 0)
        assert "NOT_SERVING" in c.health.checks("grpc-svc")[1][0]["Output"]
        servicer.set("mysvc", health_pb2.HealthCheckResponse.SERVING)
        wait_until("grpc passing again", 6, lambda: len(passing_nodes(c, "grpc-svc")) == 1)
    finally:
        c.agent.service.deregister("grpc-svc")
        server.stop(0)


def test_https_check_verifies_certificates_unless_told_not_to(agent, tmp_path):
    import ssl
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    c = client(agent)
    url = f"https://127.0.0.1:{port}/health"
    try:
        assert c.agent.service.register("tls-skip", port=port,
                                        check={"HTTP": url, "Interval": "1s", "TLSSkipVerify": True})
        assert c.agent.service.register("tls-strict", port=port,
                                        check={"HTTP": url, "Interval": "1s"})
        wait_until("self-signed accepted when told", 6, lambda: len(passing_nodes(c, "tls-skip")) == 1)
        wait_until("self-signed refused otherwise", 6,
                   lambda: "certificate" in c.health.checks("tls-strict")[1][0]["Output"].lower())
        assert c.health.checks("tls-strict")[1][0]["Status"] == "critical"
    finally:
        c.agent.service.deregister("tls-skip")
        c.agent.service.deregister("tls-strict")
        srv.shutdown()
