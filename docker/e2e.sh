#!/usr/bin/env bash
# End to end on the docker-compose demo: two datacenters of containers.
# Builds the image, brings the stack up, checks federation, a leader loss
# and a WAN partition, and tears everything down (also on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
P=meridian-e2e
COMPOSE="docker-compose -p $P"
DC1_CLIENT=10.213.1.14
DC2_CLIENT=10.213.2.24

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*"; }
fail() { log "FAILED: $*"; $COMPOSE ps || true; for c in dc1-server-1 dc2-server-1 dc1-client; do docker logs --tail 30 "$c" 2>&1 || true; done; exit 1; }
down() { $COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true; }
trap down EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - start < secs )) || fail "$what: not within ${secs}s"
    sleep 1
  done
  log "$what ($(( SECONDS - start ))s)"
}
api() { curl -sf --max-time 15 "http://$1:8500$2"; }
has_leader() { api "$1" /v1/status/leader | grep -q ':8300'; }
wan_alive() { [ "$(docker exec "${1:-dc1-server-1}" /bin/meridian members -wan | grep -c ' alive ')" = 6 ]; }
kv_dc2_is() { [ "$(api $DC1_CLIENT "/v1/kv/e2e/key?dc=dc2&raw")" = "$1" ]; }
no_path() { curl -s --max-time 20 "http://$DC1_CLIENT:8500/v1/kv/e2e/key?dc=dc2" | grep -q 'No path to datacenter'; }
dns_dc2_web() { dig +short +time=2 +tries=1 @$DC1_CLIENT -p 8600 web.service.dc2.consul | grep -q '^10.213.2.25$'; }

log "building the image (static binary, FROM scratch)"
bash docker/build.sh
down
log "starting two datacenters"
$COMPOSE up -d >/dev/null

wait_for 90 "dc1 has a leader" has_leader 10.213.1.11
wait_for 90 "dc2 has a leader" has_leader 10.213.2.21
wait_for 90 "members -wan shows the six servers alive" wan_alive
docker exec dc1-client /bin/meridian members

# The servers have leaders; a client answers once it has found its
# servers in the LAN pool, a moment later.
wait_for 60 "dc1's client reaches its servers" has_leader $DC1_CLIENT
wait_for 60 "dc2's client reaches its servers" has_leader $DC2_CLIENT

log "KV: written in dc2 from a dc1 client, absent in dc1"
wait_for 30 "a dc1 client writes into dc2" \
  bash -c "curl -sf -X PUT --max-time 15 'http://$DC1_CLIENT:8500/v1/kv/e2e/key?dc=dc2' -d from-dc1 | grep -q true"
got=$(api $DC2_CLIENT '/v1/kv/e2e/key?raw' 2>&1 || true)
[ "$got" = from-dc1 ] || fail "the key is not in dc2 (read through dc2's client: '$got')"
exec 3>&1  # wait_for silences its command; fd 3 is still the log.
# 404 is the answer and 200 a leak; anything else (dc1 between leaders)
# says nothing either way, so it is asked again.
dc1_answers() {
  code=$(curl -s -o /tmp/e2e-dc1-body -w '%{http_code}' --max-time 15 "http://$DC1_CLIENT:8500/v1/kv/e2e/key")
  case "$code" in
    404|200) return 0 ;;
    *) log "dc1 answered $code: $(head -c 200 /tmp/e2e-dc1-body)" >&3; return 1 ;;
  esac
}
wait_for 30 "dc1 answers a read of the key" dc1_answers
[ "$code" = 404 ] || fail "the key leaked into dc1 ($code)"

wait_for 60 "web.service.dc2.consul resolves from a dc1 agent (passing HTTP check)" dns_dc2_web

log "stopping dc2's leader"
leader=$(api $DC2_CLIENT /v1/status/leader | tr -d '"')
n=${leader#10.213.2.2}; n=${n%%:*}
docker stop "dc2-server-$n" >/dev/null
wait_for 60 "dc2 answers again after re-election" kv_dc2_is from-dc1
docker start "dc2-server-$n" >/dev/null
wait_for 90 "the restarted server sees the six servers again" wan_alive "dc2-server-$n"

log "cutting dc2's servers off the WAN"
for i in 1 2 3; do docker network disconnect "${P}_wan" "dc2-server-$i"; done
wait_for 60 "No path to datacenter from dc1" no_path
for i in 1 2 3; do docker network connect --ip "10.213.0.2$i" "${P}_wan" "dc2-server-$i"; done
wait_for 120 "forwarding to dc2 heals" kv_dc2_is from-dc1

log "all checks passed"
