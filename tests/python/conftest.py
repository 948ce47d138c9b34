"""Starts the built `meridian` binary as a user would, for tests that use
software nobody here wrote: the py-consul client library and dig."""

import atexit
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MERIDIAN_BIN", os.path.join(ROOT, "target", "debug", "meridian"))


# Ports handed out below the kernel's ephemeral range: a port the kernel
# picked for us is free only until some other process (a benchmark's
# client sockets, a Rust test beside us) is handed the same one, and agents
# bind theirs a moment later. Below the range only someone who asks for a
# port by number can take it.
_LOW, _HIGH = 20000, 32000
_issued = set()


def _ephemeral_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1, never one this
    process has handed out before."""
    high = min(_HIGH, _ephemeral_floor())
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(_LOW, high)
        if port not in _issued and _bindable(port):
            _issued.add(port)
            return port
    raise RuntimeError(f"no free port in {_LOW}-{high} after 1000 tries")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class Agent:
    def __init__(self, extra_args=(), config_dir=None, wait_for_service=None, node="pytest-node",
                 ready=None, ephemeral=False):
        # ephemeral: every port 0, learnt from the agent's "agent listening"
        # line, so that agents started side by side never race for a port.
        pick = (lambda: 0) if ephemeral else free_port
        self.http_port = pick()
        self.dns_port = pick()
        self.serf_wan_port = pick()
        self.log = tempfile.NamedTemporaryFile(prefix="meridian-agent-", suffix=".log", delete=False)
        # Kept while the tests run (a failure quotes it), gone after.
        atexit.register(_remove, self.log.name)
        args = [
            BIN, "agent", "-dev", "-node", node,
            "-http-port", str(self.http_port), "-dns-port", str(self.dns_port),
            "-server-port", str(pick()), "-serf-lan-port", str(pick()),
            "-serf-wan-port", str(self.serf_wan_port),
        ]
        if config_dir:
            args += ["-config-dir", config_dir]
        args += list(extra_args)
        self.node = node
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.https_port = None
        if ephemeral:
            ports = self.listening_ports()
            self.http_port, self.dns_port = ports["http"], ports["dns"]
            self.serf_wan_port = ports["serf_wan"]
            self.https_port = ports.get("https")
        if ready:
            # Under a default-deny ACL policy the node's own health reads
            # filtered empty without a token: such agents say what ready is.
            self.wait_for(*ready)
        else:
            self.wait_ready()
        if wait_for_service:
            # Services from files reach the catalog by anti-entropy, a moment
            # after the leader is up.
            self.wait_for(f"/v1/catalog/service/{wait_for_service}", b'"ServiceName"')

    def listening_ports(self, timeout=30):
        """The ports of the agent's "agent listening" log line, by field."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            with open(self.log.name, errors="replace") as f:
                for line in f:
                    line = ANSI.sub("", line)
                    if "agent listening" in line:
                        fields = line.split("agent listening", 1)[1].split()
                        pairs = (kv.split("=", 1) for kv in fields if "=" in kv)
                        return {k: int(v.split(",")[0].rsplit(":", 1)[1]) for k, v in pairs}
            time.sleep(0.05)
        self.stop()
        with open(self.log.name) as f:
            raise RuntimeError("agent did not say where it listens:\n" + f.read()[-4000:])

    @property
    def http_addr(self):
        return f"127.0.0.1:{self.http_port}"

    def wait_ready(self, timeout=30):
        self.wait_for(f"/v1/health/node/{self.node}", b"serfHealth", timeout)

    def wait_for(self, path, needle, timeout=30):
        deadline = time.time() + timeout
        url = f"http://{self.http_addr}{path}"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if needle in r.read():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        with open(self.log.name) as f:
            raise RuntimeError("agent did not become ready:\n" + f.read()[-4000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def dig(self, *args):
        if not shutil.which("dig"):
            pytest.skip("dig not installed")
        out = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(self.dns_port), "+tries=1", "+time=2", *args],
            capture_output=True, text=True, timeout=20,
        )
        return out.stdout


@pytest.fixture(scope="module")
def agent():
    d = tempfile.mkdtemp(prefix="meridian-conf-")
    with open(os.path.join(d, "web.json"), "w") as f:
        f.write('{"service": {"name": "web", "port": 8080, "tags": ["blue"]}}\n')
    with open(os.path.join(d, "api.hcl"), "w") as f:
        f.write('service {\n  name = "api"\n  port = 9090\n  tags = ["v2"]\n}\n')
    a = Agent(config_dir=d, wait_for_service="api")
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def make_certs(d):
    """A CA, a server and a client certificate, as Consul's TLS tutorial
    makes them (`meridian tls ...` in place of `consul tls ...`)."""
    for args in (["tls", "ca", "create"],
                 ["tls", "cert", "create", "-server", "-dc", "dc1"],
                 ["tls", "cert", "create", "-client", "-dc", "dc1"]):
        subprocess.run([BIN, *args], cwd=d, check=True, capture_output=True, timeout=30)
    return {
        "ca": os.path.join(d, "consul-agent-ca.pem"),
        "server": (os.path.join(d, "dc1-server-consul-0.pem"), os.path.join(d, "dc1-server-consul-0-key.pem")),
        "client": (os.path.join(d, "dc1-client-consul-0.pem"), os.path.join(d, "dc1-client-consul-0-key.pem")),
    }


@pytest.fixture(scope="module")
def https_agent():
    """A dev agent serving HTTPS beside HTTP, requiring client
    certificates: (agent, certificate paths)."""
    certs_dir = tempfile.mkdtemp(prefix="meridian-certs-")
    conf_dir = tempfile.mkdtemp(prefix="meridian-conf-")
    certs = make_certs(certs_dir)
    with open(os.path.join(conf_dir, "tls.hcl"), "w") as f:
        f.write(f"""
tls {{
  defaults {{
    ca_file   = "{certs['ca']}"
    cert_file = "{certs['server'][0]}"
    key_file  = "{certs['server'][1]}"
  }}
  https {{
    verify_incoming = true
  }}
}}
ports {{
  https = 0
}}
""")
    a = Agent(config_dir=conf_dir, ephemeral=True)
    yield a, certs
    a.stop()
    shutil.rmtree(conf_dir, ignore_errors=True)
    shutil.rmtree(certs_dir, ignore_errors=True)
