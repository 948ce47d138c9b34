#!/usr/bin/env bash
# Blocking queries' cost on one server: RSS per waiting query and the
# wake-up latency when one write wakes them all (`meridian bench -workload
# watchers`), for N watchers on one key and on N distinct keys. Each run
# gets a fresh server, since freed memory is not given back to the OS.
#
# HTTP/1.1 (a connection per watcher) runs up to 10,000: the machine's
# file-descriptor limit (20,000, `ulimit -Hn`) bounds connections on both
# sides. Past it the watchers share HTTP/2 streams over HTTPS (ALPN h2),
# 16 connections. The bench client is one IP, so the server's
# `limits.http_max_conns_per_client` is raised (Consul's default is 200).
#
#   bash bench/watchers.sh   (H1="1000 10000" H2="1000 10000 100000")
source "$(dirname "$0")/lib.sh"
OUT=${OUT:-$ROOT/target/bench/watchers}
H1=${H1:-"1000 10000"}
H2=${H2:-"1000 10000 100000"}
mkdir -p "$OUT"
build

PKI=$WORK/pki
mkdir -p "$PKI"
(cd "$PKI" && "$BIN" tls ca create >/dev/null && "$BIN" tls cert create -server -dc dc1 >/dev/null)
cat >"$WORK/watchers.hcl" <<HCL
limits { http_max_conns_per_client = 15000 }
tls {
  defaults {
    ca_file   = "$PKI/consul-agent-ca.pem"
    cert_file = "$PKI/dc1-server-consul-0.pem"
    key_file  = "$PKI/dc1-server-consul-0-key.pem"
  }
}
HCL

# run PROTO N KEYS
run() {
  local proto=$1 n=$2 keys=$3 addr conns=1 tls=()
  meridian_server 1 1 -config-file "$WORK/watchers.hcl" -https-port $((PB + 16))
  wait_http 127.0.0.1:$((PB + 10))/v1/status/leader 127 30
  if [ "$proto" = h2 ]; then
    addr=https://127.0.0.1:$((PB + 16)); conns=16; tls=(-ca-file "$PKI/consul-agent-ca.pem")
  else
    addr=127.0.0.1:$((PB + 10))
  fi
  local name=$proto-$n-$keys
  "$BIN" bench -workload watchers -c "$n" -keys "$keys" -connections "$conns" -addr "$addr" \
    "${tls[@]}" -pids "${MPID[1]}" -timeout 300s -json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 || true
  sed "s/^/  [$name] /" "$OUT/$name.txt" >&2
  stop_all
}

for n in $H1; do run h1 "$n" 1; run h1 "$n" "$n"; done
for n in $H2; do run h2 "$n" 1; run h2 "$n" "$n"; done

python3 - "$OUT" <<'PY' | tee "$OUT/report.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| protocol | watchers | keys | RSS before / waiting / wake peak MiB | B per waiting query | woken | wake p50 / p99 / max ms | CPU ms in the wake: server / load generator |")
print("|---|---|---|---|---|---|---|---|")
rows = [json.loads(f.read_text()) for f in out.glob("h*.json")]
for r in sorted(rows, key=lambda r: (r["http2"], r["watchers"], r["keys"])):
    w = r.get("wake") or {}
    mib = lambda k: f'{r[k] / 1024:.1f}'
    print(f'| {"HTTP/2" if r["http2"] else "HTTP/1.1"} | {r["watchers"]} | {r["keys"]} '
          f'| {mib("rss_before_kib")} / {mib("rss_waiting_kib")} / {mib("rss_wake_peak_kib")} '
          f'| {r["bytes_per_watcher"]} | {r["woken"]} '
          f'| {w.get("p50_ms", "-")} / {w.get("p99_ms", "-")} / {w.get("max_ms", "-")} '
          f'| {r.get("wake_cpu_ms_server", 0):.0f} / {r.get("wake_cpu_ms_bench", 0):.0f} |')
PY
