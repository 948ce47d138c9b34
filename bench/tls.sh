#!/usr/bin/env bash
# TLS off against TLS on, the same build and the same three servers'
# layout, one after the other: KV GET and PUT at 64 clients (128 B) spread
# over the three servers. With TLS on every hop is encrypted and mutually
# authenticated: the load generator speaks HTTPS with a client
# certificate (HTTP is off), followers forward writes to the leader over
# server RPC with TLS, and Raft's replication rides the same RPC
# (verify_incoming, verify_outgoing, verify_server_hostname). The sides
# alternate ROUNDS times and the report gives each side's median round.
#
#   bash bench/tls.sh            (DURATION=10s ROUNDS=3)
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/target/bench/tls}
mkdir -p "$OUT"
build

PKI=$WORK/pki
mkdir -p "$PKI"
(cd "$PKI" && "$BIN" tls ca create >/dev/null &&
  for _ in 1 2 3; do "$BIN" tls cert create -server -dc dc1 >/dev/null; done &&
  "$BIN" tls cert create -client -dc dc1 >/dev/null)
CA=$PKI/consul-agent-ca.pem
CLIENT=(-ca-file "$CA" -client-cert "$PKI/dc1-client-consul-0.pem" -client-key "$PKI/dc1-client-consul-0-key.pem")

# tls_server N COUNT [flags]: server N with certificates and verification on
# for HTTPS and server RPC.
tls_server() {
  local n=$1 count=$2 i=$(($1 - 1)); shift 2
  cat >"$WORK/tls$n.hcl" <<HCL
tls {
  defaults {
    ca_file         = "$CA"
    cert_file       = "$PKI/dc1-server-consul-$i.pem"
    key_file        = "$PKI/dc1-server-consul-$i-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc { verify_server_hostname = true }
}
HCL
  meridian_server "$n" "$count" -config-file "$WORK/tls$n.hcl" "$@"
}

https_addrs() { # COUNT -> comma list of https:// addresses
  local out=(); for n in $(seq 1 "$1"); do out+=("https://127.0.0.1:$((19500 + n * 10 + 6))"); done
  (IFS=,; echo "${out[*]}")
}

for round in $(seq 1 "$ROUNDS"); do
for side in off on; do
  if [ $side = off ]; then
    meridian_cluster 3
    addrs=$(meridian_addrs 3); tls=()
  else
    # HTTP stays on for the harness' readiness probe only; the load goes
    # to HTTPS (port base+6).
    for n in 1 2 3; do tls_server "$n" 3 -https-port $((19500 + n * 10 + 6)); done
    for n in 1 2 3; do wait_http "127.0.0.1:$((19500 + n * 10))/v1/status/leader" 127 30; done
    addrs=$(https_addrs 3); tls=("${CLIENT[@]}")
    # Enforced, not merely offered: no client certificate, no answer.
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "https://127.0.0.1:19516/v1/status/leader" || true)
    [ "$code" = 000 ] || { echo "HTTPS without a client certificate got $code" >&2; exit 1; }
  fi
  bench "$side-get-c64-$round" -workload kv-get -addr "$addrs" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)" "${tls[@]}"
  bench "$side-put-c64-$round" -workload kv-put -addr "$addrs" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)" "${tls[@]}"
  stop_all
done
done

echo
echo "### TLS off against on (HTTPS with client certificates, server RPC with mutual TLS)"
echo
machine
echo
python3 "$ROOT/bench/sides.py" "$OUT" "$ROUNDS" TLS
