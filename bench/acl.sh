#!/usr/bin/env bash
# ACLs off against ACLs on, the same build, the same three servers' layout,
# one after the other: KV GET and PUT at 64 clients (128 B). With ACLs on
# the default policy is deny and every request carries a token of 20
# policies holding 100 rules in all (key, key_prefix, service_prefix,
# node_prefix, session_prefix...), the one that grants bench/ last, so a
# decision walks a realistic tree rather than a single rule. The sides
# alternate ROUNDS times (off, on, off, on...) and the report gives each
# side's median round, since this machine's fsync and CPU vary by more
# than the difference measured from one minute to the next.
#
#   bash bench/acl.sh            (DURATION=10s ROUNDS=3)
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/target/bench/acl}
MGMT=5d0b8b3e-3c55-4c59-9a55-0a3b1d1e0a01
mkdir -p "$OUT"
build

cat >"$WORK/acl.hcl" <<HCL
acl {
  enabled        = true
  default_policy = "deny"
  tokens { initial_management = "$MGMT" }
}
HCL

# 20 policies of 5 rules each; policy 20's last rule grants bench/.
make_token() { # HTTP address -> the token's secret on stdout
  local addr=$1 ids=() i rules
  for i in $(seq 1 20); do
    rules="key_prefix \"app$i/\" { policy = \"read\" }
key \"app$i/secret\" { policy = \"deny\" }
service_prefix \"svc$i-\" { policy = \"write\" }
node_prefix \"rack$i-\" { policy = \"read\" }
session_prefix \"\" { policy = \"read\" }"
    [ "$i" = 20 ] && rules="${rules/session_prefix/key_prefix \"bench/\" \{ policy = \"write\" \}
session_prefix}"
    ids+=("$(curl -sf -X PUT -H "X-Consul-Token: $MGMT" "http://$addr/v1/acl/policy" \
      --data "$(python3 -c 'import json,sys; print(json.dumps({"Name": sys.argv[1], "Rules": sys.argv[2]}))' "bench-$i" "$rules")" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')")
  done
  curl -sf -X PUT -H "X-Consul-Token: $MGMT" "http://$addr/v1/acl/token" \
    --data "$(python3 -c 'import json,sys; print(json.dumps({"Description": "bench", "Policies": [{"ID": i} for i in sys.argv[1:]]}))' "${ids[@]}")" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["SecretID"])'
}

for round in $(seq 1 "$ROUNDS"); do
for side in off on; do
  tok=()
  if [ $side = off ]; then
    meridian_cluster 3
  else
    meridian_cluster 3 -config-file "$WORK/acl.hcl"
    # The leader installs initial_management just after it is elected.
    for _ in $(seq 1 100); do
      curl -sf -H "X-Consul-Token: $MGMT" "http://$(meridian_addrs 1 | cut -d, -f1)/v1/acl/token/self" >/dev/null && break
      sleep 0.1
    done
    secret=$(make_token "$(meridian_addrs 1)")
    log "token of 20 policies: ${secret:0:8}..."
    # Denied without it: the run measures enforcement, not an open door.
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data x "http://$(meridian_addrs 1)/v1/kv/bench/probe")
    [ "$code" = 403 ] || { echo "ACLs are not enforced: PUT without a token got $code" >&2; exit 1; }
    tok=(-token "$secret")
  fi
  bench "$side-get-c64-$round" -workload kv-get -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)" "${tok[@]}"
  bench "$side-put-c64-$round" -workload kv-put -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)" "${tok[@]}"
  stop_all
done
done

echo
echo "### ACLs off against on (default deny, a token of 20 policies / 100 rules)"
echo
machine
echo
python3 "$ROOT/bench/sides.py" "$OUT" "$ROUNDS" ACLs
