#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/: a handful of real
inputs per target (the repository's configs, packets as the agent sends
them, bodies as Consul's clients send them). Run again after changing it;
the files are committed."""
import gzip, hashlib, io, json, os, struct, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEY = "pUqJrVyVRj5jsiYEkM/tFQ=="  # src/fuzz.rs GOSSIP_KEY


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# config: the repository's own files, HCL and JSON.
for rel in ["configs/server.hcl", "configs/dc1/server.hcl", "configs/dc1/client.hcl",
            "configs/services/api.hcl", "configs/services/web.json"]:
    put("config", rel.replace("/", "_"), open(os.path.join(ROOT, rel), "rb").read())
put("config", "acl_tls.json", json.dumps({
    "datacenter": "dc1", "server": True, "bootstrap_expect": 3,
    "retry_join": ["127.0.0.2"], "encrypt": KEY,
    "acl": {"enabled": True, "default_policy": "deny", "tokens": {"initial_management": "root"}},
    "limits": {"http_max_conns_per_client": 100}, "ports": {"dns": -1},
    "watches": [{"type": "key", "key": "a", "args": ["true"]}],
    "services": [{"name": "web", "port": 80, "check": {"http": "http://127.0.0.1/", "interval": "10s"}}],
}))

# rpc_frame: frames as a client writes them (length, id, method, MessagePack).
def frame(id_, method, body):
    b = struct.pack(">IB", id_, method) + body
    return struct.pack(">I", len(b)) + b

def mp_str(s):
    s = s.encode()
    return (bytes([0xa0 | len(s)]) if len(s) < 32 else bytes([0xd9, len(s)])) + s

put("rpc_frame", "datacenters", frame(1, 7, b"\xc0"))
put("rpc_frame", "resolve_token", frame(2, 10, mp_str("4ea0f7a2-0000-4000-8000-000000000001")))
put("rpc_frame", "two_frames", frame(1, 7, b"\xc0") + frame(2, 6, b"\x81" + mp_str("dc") + mp_str("dc1")))
put("rpc_frame", "vote", frame(3, 2, b"\x83" + mp_str("vote") + b"\x82" + mp_str("leader_id")
                                + b"\x82" + mp_str("term") + b"\x01" + mp_str("node_id") + b"\x01"
                                + mp_str("committed") + b"\xc2" + mp_str("last_log_id") + b"\xc0"))
put("rpc_frame", "short", struct.pack(">I", 10) + b"\x00\x00")

# dns_query: questions as dig asks them.
def qname(name):
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"

def query(name, qtype, edns=False):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1 if edns else 0)
    q = qname(name) + struct.pack(">HH", qtype, 1)
    opt = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 0) if edns else b""
    return hdr + q + opt

put("dns_query", "service_a", query("web.service.consul", 1))
put("dns_query", "tag_srv_dc", query("v1.web.service.dc1.consul", 33, edns=True))
put("dns_query", "rfc2782", query("_web._tcp.service.consul", 33))
put("dns_query", "node_aaaa", query("server-1.node.consul", 28))
put("dns_query", "apex_soa", query("consul", 6))
put("dns_query", "outside", query("example.com", 1))

# gossip: our own notices in plain text, and one sealed with the key.
put("gossip", "leave", b"\x01" + json.dumps(["server-1", 3]).encode())
put("gossip", "force_leave", b"\x02" + json.dumps(["server-2", True]).encode())
put("gossip", "ping", b"\x03" + struct.pack(">Q", 7))
put("gossip", "pong", b"\x04" + struct.pack(">Q", 7))
put("gossip", "user_event", b"\x05" + json.dumps({"ID": "x", "Name": "deploy", "Payload": None, "LTime": 1}).encode())
put("gossip", "key_query", b"\x06" + json.dumps({"id": 1, "op": {"Install": KEY}, "relay_factor": 1, "reply_to": "127.0.0.1:8301"}).encode())
put("gossip", "key_reply", b"\x07" + json.dumps({"id": 1, "node": "n", "ok": True, "message": "", "keys": [KEY], "primary": KEY}).encode())
put("gossip", "key_relay", b"\x08" + json.dumps(["127.0.0.1:8301", [1, 2]]).encode())
put("gossip", "foca_empty", b"\x00")

# snapshot: archives as `snapshot save` writes them, and ones that lie.
def archive(files, sums=True, bad_sum=False, extra=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        lines = ""
        for name, data in files:
            h = hashlib.sha256(data).hexdigest()
            lines += ("0" * 64 if bad_sum else h) + "  " + name + "\n"
        entries = list(files) + ([("SHA256SUMS", lines.encode())] if sums else []) + list(extra)
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)

state = json.dumps({"kvs": [], "tombstones": {}, "nodes": [], "services": [], "checks": [],
                    "indexes": {}, "last_index": 5}).encode()
meta = json.dumps({"ID": "1-5-0", "Size": len(state), "Index": 5, "Term": 1, "Version": 1}).encode()
put("snapshot", "good.tgz", archive([("meta.json", meta), ("state.json", state)]))
put("snapshot", "bad_checksum.tgz", archive([("meta.json", meta), ("state.json", state)], bad_sum=True))
put("snapshot", "no_sums.tgz", archive([("meta.json", meta), ("state.json", state)], sums=False))
put("snapshot", "outside_path.tgz", archive([("meta.json", meta), ("state.json", state)],
                                             extra=[("../../etc/evil", b"x"), ("/abs/path", b"y")]))
good = archive([("meta.json", meta), ("state.json", state)])
raw = gzip.decompress(good)
# A tar header whose size field claims more than follows.
lying = bytearray(raw)
lying[124:136] = b"77777777777\x00"
put("snapshot", "size_lies.tgz", gzip.compress(bytes(lying), mtime=0))

# http_json: first byte picks the family (src/fuzz.rs http_json).
def body(family, value):
    return bytes([family]) + json.dumps(value).encode()

put("http_json", "txn_kv", body(0, [{"KV": {"Verb": "set", "Key": "a", "Value": "aGVsbG8="}},
                                   {"KV": {"Verb": "cas", "Key": "b", "Index": 3, "Value": "eA=="}}]))
put("http_json", "txn_mixed", body(0, [{"Node": {"Verb": "get", "Node": {"Node": "n1"}}},
                                      {"Service": {"Verb": "get", "Node": "n1", "Service": {"ID": "web"}}},
                                      {"Check": {"Verb": "delete", "Check": {"Node": "n1", "CheckID": "c"}}}]))
put("http_json", "service", body(1, {"Name": "web", "ID": "web1", "Port": 80, "Tags": ["v1"],
                                    "Meta": {"a": "b"}, "Weights": {"Passing": 3, "Warning": 1},
                                    "Check": {"HTTP": "http://127.0.0.1/", "Interval": "10s", "Timeout": "1s"},
                                    "Checks": [{"TTL": "30s"}, {"Args": ["true"], "Interval": "5s"}]}))
put("http_json", "check", body(2, {"Name": "mem", "TCP": "127.0.0.1:22", "Interval": "10s",
                                  "DeregisterCriticalServiceAfter": "90m"}))
put("http_json", "acl_policy", body(3, {"Name": "p", "Rules": 'key_prefix "" { policy = "read" }'}))
put("http_json", "acl_token", body(3, {"Description": "t", "Policies": [{"Name": "p"}],
                                      "ServiceIdentities": [{"ServiceName": "web"}], "ExpirationTTL": "1h"}))
put("http_json", "session", body(4, {"Name": "lock", "LockDelay": "15s", "Behavior": "delete", "TTL": "30s",
                                    "NodeChecks": ["serfHealth"], "ServiceChecks": [{"ID": "c", "Namespace": ""}]}))
put("http_json", "catalog_register", body(5, {"Node": "n1", "Address": "127.0.0.1",
                                             "Service": {"Service": "web", "Port": 80},
                                             "Check": {"CheckID": "c", "Status": "passing"}}))

# http_query: query strings as Consul's clients send them; before a `?`,
# the key of a KV request (src/fuzz.rs http_query).
SESSION = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
for name, q in [
    ("blocking", "?index=1234&wait=5m&dc=dc1&token=root"),
    ("consistent", "?consistent&index=7&wait=1.5s"),
    ("stale_and_consistent", "?stale=&consistent=true"),
    ("wait_units", "?wait=1h2m3.5s&index=0&stale=False"),
    ("kv_recurse", "app/config?recurse&dc=dc2"),
    ("kv_keys", "app/?keys&separator=%2F&index=10"),
    ("kv_cas_flags", "app/k?cas=0&flags=42"),
    ("kv_acquire", "locks/leader?acquire=" + SESSION + "&flags=1"),
    ("kv_release", "locks/leader?release=" + SESSION),
    ("kv_conflict", "a?cas=3&acquire=" + SESSION),
    ("kv_raw_traversal", "../etc?raw"),
    ("health", "?tag=v1&tag=primary&passing&node-meta=rack:r1&node-meta=zone&near=_agent"),
    ("catalog", "?tag=v1&dc=dc1&stale&pretty"),
    ("acl_tokens", "?policy=00000000-0000-0000-0000-000000000001&role=r"),
    ("keyring", "?relay-factor=3&local-only=true"),
    ("maintenance", "?enable=true&reason=upgrade%20in%20progress"),
    ("raft_peer", "?address=127.0.0.1:8300&id="),
    ("percent", "a%20b?token=%E2%9C%93&dc=%00"),
]:
    put("http_query", name, q)

# acl_rules: rules as Consul's docs write them, HCL and JSON.
put("acl_rules", "hcl", '''key_prefix "" { policy = "read" }
key "app/secret" { policy = "deny" }
service_prefix "" { policy = "write" intentions = "read" }
node "n1" { policy = "write" }
operator = "read"
keyring = "write"
''')
put("acl_rules", "legacy_hcl", 'key "" {\n  policy = "write"\n}\nevent "" {\n  policy = "read"\n}\n')
put("acl_rules", "json", json.dumps({"key_prefix": {"": {"policy": "read"}},
                                     "service": {"web": {"policy": "write"}}, "acl": "read"}))
put("acl_rules", "empty", "")
