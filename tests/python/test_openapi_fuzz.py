"""schemathesis against a live `meridian agent -dev`, driven by the OpenAPI
description the agent itself serves at `/v1/openapi.json`.

Every documented operation but the excluded ones below gets generated
requests, valid (positive) and invalid (negative) ones, and each answer is
held to three rules:

- no 5xx but Consul's own: the 500s whose texts Consul answers for the
  same request (`No cluster leader`, `No path to datacenter`, an unknown
  node to force-leave, ...), and the 429/503 of the agent's health
  endpoints. Bad input must be a 4xx;
- the status is one the description lists, and a 2xx body conforms to
  its schema (the description must be true of our answers);
- the agent is still running after each operation (no crash).

Bounded: `MERIDIAN_FUZZ_EXAMPLES` examples per operation and mode (3 by
default, derandomized so CI is repeatable; set `MERIDIAN_FUZZ_SEED` for a
different draw) and a budget of `MERIDIAN_FUZZ_SECONDS` (40): operations
reached after it get one valid example each (and are counted), so that the
stage stays near a minute on a busy machine. Failures are gathered, not shrunk, and
listed together at the end.

Excluded, because they stop or rewire the agent or reach outside this
machine: `agent/leave` (stops the agent), `agent/force-leave` (a dev
agent has no other member), `agent/join` (would dial generated
addresses), `PUT /v1/snapshot` (restore replaces the whole state) and
`DELETE /v1/operator/raft/peer` (could remove the only server) and
`GET /v1/agent/monitor` (streams log lines until the caller hangs up). Check
definitions are sent with their HTTP/TCP/UDP/GRPC targets pointed at a
closed loopback port, so that no generated address is ever probed.
"""

import json
import os
import re
import shutil
import tempfile
import time
import uuid

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS  # noqa: E402

from conftest import Agent  # noqa: E402

EXAMPLES = int(os.environ.get("MERIDIAN_FUZZ_EXAMPLES", "3"))
SEED = os.environ.get("MERIDIAN_FUZZ_SEED")
BUDGET = float(os.environ.get("MERIDIAN_FUZZ_SECONDS", "40"))

EXCLUDED = {
    ("PUT", "/v1/agent/leave"),
    ("PUT", "/v1/agent/force-leave/{node}"),
    ("PUT", "/v1/agent/join/{addr}"),
    ("PUT", "/v1/snapshot"),
    ("DELETE", "/v1/operator/raft/peer"),
    ("GET", "/v1/agent/monitor"),
}

# The 500s Consul answers for conditions of the cluster, not of the
# request: no leader, a datacenter out of reach (an unknown `?dc=` reads
# the same), and the keyring's per-pool multi-error (a dev agent has no
# gossip key). Anything else is a defect: bad input must be a 4xx.
CONSUL_500 = re.compile(r"^(No cluster leader|No path to datacenter|\d+ errors? occurred:)")

# Where a check would send a probe: pointed at a closed port here.
TARGETS = {"http": "http://127.0.0.1:1/", "tcp": "127.0.0.1:1", "udp": "127.0.0.1:1",
           "grpc": "127.0.0.1:1"}


def fold(k):
    return k.replace("_", "").replace("-", "").lower()


def defang(v):
    """Points every check target in a body at a closed loopback port."""
    if isinstance(v, dict):
        return {k: (TARGETS[fold(k)] if fold(k) in TARGETS and isinstance(x, str) and x
                    else defang(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [defang(x) for x in v]
    return v


MANAGEMENT = str(uuid.uuid4())


@pytest.fixture(scope="module")
def fuzz_agent():
    d = tempfile.mkdtemp(prefix="meridian-fuzz-")
    with open(os.path.join(d, "fuzz.hcl"), "w") as f:
        # Blocking reads with generated indexes return within 100 ms; ACLs
        # are on (default allow) so that the ACL endpoints do real work.
        f.write(f"""
max_query_time = "100ms"
default_query_time = "100ms"
acl {{
  enabled = true
  default_policy = "allow"
  tokens {{
    initial_management = "{MANAGEMENT}"
  }}
}}
""")
    a = Agent(config_dir=d, node="fuzz-node", ephemeral=True)
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_generated_requests_get_no_5xx_and_conforming_answers(fuzz_agent):
    base = f"http://{fuzz_agent.http_addr}"
    schema = schemathesis.openapi.from_url(base + "/v1/openapi.json",
                                           headers={"X-Consul-Token": MANAGEMENT})
    conformance = [CHECKS.get_one(n) for n in ("status_code_conformance", "response_schema_conformance")]
    failures = {}
    counts = {"operations": 0, "examples": 0, "skipped_modes": 0, "over_budget": 0}
    started = time.monotonic()

    def record(case, what):
        key = (case.operation.label, what.splitlines()[0][:160])
        failures.setdefault(key, (what, case.as_curl_command(headers={"X-Consul-Token": "<mgmt>"})))

    def exercise(case):
        counts["examples"] += 1
        statuses = counts.setdefault("statuses", {})
        if case.body is not None and not isinstance(case.body, (bytes, str)):
            case.body = defang(case.body)
        if case.query:
            # Any `dc` but this one is `No path to datacenter` and any
            # `token` but a known one `ACL not found`, answered before the
            # endpoint's own logic: drawn freely they would take most
            # examples there (tests/acl_*.rs and federation cover both).
            for name in ("dc", "token"):
                case.query.pop(name, None)
        r = case.call(base_url=base, headers={"X-Consul-Token": MANAGEMENT}, timeout=15)
        text = r.content[:300].decode("utf-8", "replace")
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if os.environ.get("MERIDIAN_FUZZ_VERBOSE") and r.status_code >= 500:
            print(f"  {r.status_code} {case.operation.label}: {text[:80]!r}")
        if r.status_code >= 500 and not (
                r.status_code == 500 and CONSUL_500.match(text)
                or r.status_code == 503 and "/v1/agent/health/service/" in case.operation.path):
            record(case, f"{r.status_code} {text!r}")
        try:
            case.validate_response(r, checks=conformance)
        except (AssertionError, BaseExceptionGroup) as e:  # schemathesis raises a FailureGroup
            record(case, f"{r.status_code}: {e}")

    ops = [o.ok() for o in schema.get_all_operations()]
    for op in ops:
        if (op.method.upper(), op.path) in EXCLUDED:
            continue
        counts["operations"] += 1
        modes, examples = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), EXAMPLES
        if time.monotonic() - started > BUDGET:
            # Past the budget each operation still gets one valid request.
            counts["over_budget"] += 1
            modes, examples = (GenerationMode.POSITIVE,), 1
        for mode in modes:
            run = settings(max_examples=examples, deadline=None, database=None,
                           derandomize=SEED is None, phases=[Phase.explicit, Phase.generate],
                           suppress_health_check=list(HealthCheck))(given(case=op.as_strategy(mode))(exercise))
            if SEED is not None:
                run = seed(int(SEED))(run)
            try:
                run()
            except Exception as e:  # noqa: BLE001 - a mode that cannot be generated is skipped, not a failure
                if "Unsatisfiable" in type(e).__name__ or "unsatisfiable" in str(e).lower():
                    counts["skipped_modes"] += 1
                else:
                    raise
        assert fuzz_agent.proc.poll() is None, f"the agent stopped during {op.label}"
        if os.environ.get("MERIDIAN_FUZZ_VERBOSE"):
            print(f"{time.monotonic() - started:6.1f} s  {op.label}")
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {counts['operations']} operations of {len(ops)} "
          f"({len(EXCLUDED)} excluded; {counts['over_budget']} past the {BUDGET:.0f} s budget, one example each), "
          f"{counts['examples']} examples, "
          f"{counts['skipped_modes']} modes not generable, {elapsed:.1f} s; "
          f"answers by status: {dict(sorted(counts['statuses'].items()))}")
    report = "\n\n".join(f"{label}: {what}\n  {curl}" for (label, _), (what, curl) in sorted(failures.items()))
    assert not failures, f"{len(failures)} distinct failures:\n{report}"
    assert counts["examples"] >= counts["operations"], "too few examples ran to mean anything"
