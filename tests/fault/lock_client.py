#!/usr/bin/env python3
"""One lock client as an OS process of its own, so the fault run can
SIGSTOP it as a GC pause or a descheduled VM would stop a real program
(tests/workloads.rs, lock_holders_paused_past_their_session_ttl).

It loops as Consul's api.Lock does: a session (TTL, LockDelay), an
acquire with ?acquire=, and while it holds the lock it renews the session
and reads the key ?consistent every POLL seconds; it stops believing it
holds the lock when the key names another session (or none), the renew
says the session is gone, or a call fails. After HOLD seconds it releases.

Each belief is printed as one line, wall-clock seconds (the harness runs
on the same host): "hold <start> <end> <why>". A process stopped while
holding prints its line only after it is continued and notices: the hold
it believed in spans the pause.

    lock_client.py ADDR KEY LOCK_DELAY TTL UNTIL(epoch s) NAME
Standard library only.
"""
import json
import sys
import time
import urllib.error
import urllib.request

POLL = 0.2
HOLD = 4.0
RENEW = 2.0


def main():
    addr, key, delay, ttl, until, name = sys.argv[1:7]
    until = float(until)

    def call(method, path, body=None):
        req = urllib.request.Request(f"http://{addr}{path}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status, r.read()

    session = None
    while time.time() < until:
        try:
            if session is None:
                body = json.dumps({"Name": name, "TTL": ttl, "LockDelay": delay}).encode()
                session = json.loads(call("PUT", "/v1/session/create", body)[1])["ID"]
            _, got = call("PUT", f"/v1/kv/{key}?acquire={session}", name.encode())
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            session = None
            time.sleep(0.2)
            continue
        if got.strip() != b"true":
            time.sleep(0.1)
            continue
        start = time.time()
        renewed = start
        why = "released"
        while time.time() - start < HOLD:
            time.sleep(POLL)
            try:
                if time.time() - renewed > RENEW:
                    call("PUT", f"/v1/session/renew/{session}")
                    renewed = time.time()
                _, body = call("GET", f"/v1/kv/{key}?consistent")
                if json.loads(body)[0].get("Session") != session:
                    why = "lost"
                    break
            except urllib.error.HTTPError as e:
                why = "session gone" if e.code == 404 else "error"
                break
            except (urllib.error.URLError, OSError, ValueError, IndexError):
                why = "error"
                break
        end = time.time()
        print(f"hold {start:.6f} {end:.6f} {why.replace(' ', '-')}", flush=True)
        if why == "released":
            try:
                call("PUT", f"/v1/kv/{key}?release={session}")
            except (urllib.error.URLError, OSError):
                pass
        else:
            session = None
        time.sleep(0.1)


if __name__ == "__main__":
    main()
