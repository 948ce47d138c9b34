# Shared by the bench/ scripts: builds the release binary once, starts
# Meridian and etcd clusters on loopback with their default durability
# (fsync on), and stops everything they started on exit.
#
# Ports: Meridian servers 195N0-195N5 (PORT_BASE=19500 moves them, so
# that two scripts can run side by side), etcd members 2379N (client) and
# 2380N (peer), N = 1..5. A script sources this, then calls the helpers.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# MERIDIAN_BIN runs another build (a debug one) without building.
BIN=${MERIDIAN_BIN:-$ROOT/target/release/meridian}
PB=${PORT_BASE:-19500}
WORK=$(mktemp -d /tmp/meridian-bench.XXXXXX)
PIDS=()
declare -A MPID EPID

log() { printf '==> %s\n' "$*" >&2; }

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  keep_logs
  rm -rf "$WORK"
}

# The servers' logs go with the results (leader changes show there).
keep_logs() {
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/logs"
    for f in "$WORK"/*.log; do [ -e "$f" ] && cat "$f" >>"$OUT/logs/$(basename "$f")"; done
  fi
  return 0
}
trap cleanup EXIT
trap "exit 130" INT TERM

build() {
  [ -n "${MERIDIAN_BIN:-}" ] && return 0
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --bin meridian >/dev/null)
}

need_etcd() {
  if ! command -v etcd >/dev/null; then
    log "installing Debian's etcd-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq etcd-server >/dev/null
  fi
}

wait_http() { # url needle seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    curl -sf -m 1 "$1" 2>/dev/null | grep -q "$2" && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2; return 1
}

# meridian_server N COUNT [extra flags]: server N of a COUNT-server cluster.
meridian_server() {
  local n=$1 count=$2; shift 2
  local base=$((PB + n * 10)) dir=$WORK/m$n
  mkdir -p "$dir"
  local join=()
  [ "$n" -gt 1 ] && join=(-join 127.0.0.1:$((PB + 12)))
  "$BIN" agent -server -bootstrap-expect "$count" -node "m$n" -bind 127.0.0.1 -client 127.0.0.1 \
    -data-dir "$dir" -http-port $base -dns-port $((base + 1)) -serf-lan-port $((base + 2)) \
    -serf-wan-port $((base + 3)) -server-port $((base + 4)) "${join[@]}" "$@" \
    >>"$WORK/m$n.log" 2>&1 &
  MPID[$n]=$!
  PIDS+=($!)
}

meridian_cluster() { # COUNT [extra agent flags]
  local count=$1; shift
  for n in $(seq 1 "$count"); do meridian_server "$n" "$count" "$@"; done
  for n in $(seq 1 "$count"); do wait_http "127.0.0.1:$((PB + n * 10))/v1/status/leader" 127 30; done
  log "meridian: $count server(s) with a leader"
}

meridian_addrs() { # COUNT -> comma list of HTTP addresses
  local out=() ; for n in $(seq 1 "$1"); do out+=("127.0.0.1:$((PB + n * 10))"); done
  (IFS=,; echo "${out[*]}")
}

meridian_pids() { local out=(); for n in $(seq 1 "$1"); do out+=("${MPID[$n]}"); done; (IFS=,; echo "${out[*]}"); }

etcd_member() { # N COUNT [state]
  local n=$1 count=$2 state=${3:-new} cluster=()
  for i in $(seq 1 "$count"); do cluster+=("e$i=http://127.0.0.1:$((23800 + i))"); done
  etcd --name "e$n" --data-dir "$WORK/e$n" \
    --listen-client-urls "http://127.0.0.1:$((23790 + n))" --advertise-client-urls "http://127.0.0.1:$((23790 + n))" \
    --listen-peer-urls "http://127.0.0.1:$((23800 + n))" --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + n))" \
    --initial-cluster "$(IFS=,; echo "${cluster[*]}")" --initial-cluster-state "$state" \
    --initial-cluster-token bench --log-level error >>"$WORK/e$n.log" 2>&1 &
  EPID[$n]=$!
  PIDS+=($!)
}

etcd_cluster() { # COUNT
  local count=$1
  for n in $(seq 1 "$count"); do etcd_member "$n" "$count"; done
  for n in $(seq 1 "$count"); do wait_http "127.0.0.1:$((23790 + n))/health" true 30; done
  log "etcd: $count member(s) healthy"
}

etcd_addrs() { local out=(); for n in $(seq 1 "$1"); do out+=("127.0.0.1:$((23790 + n))"); done; (IFS=,; echo "${out[*]}"); }
etcd_pids() { local out=(); for n in $(seq 1 "$1"); do out+=("${EPID[$n]}"); done; (IFS=,; echo "${out[*]}"); }

stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  keep_logs
  PIDS=(); MPID=(); EPID=()
  rm -rf "${WORK:?}"/m* "${WORK:?}"/e* "${WORK:?}"/*.log
}

# bench NAME ARGS...: one run, its JSON kept under $OUT/NAME.json.
bench() {
  local name=$1; shift
  "$BIN" bench -quiet -json "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>&1 || true
  head -3 "$OUT/$name.txt" | sed "s/^/  [$name] /" >&2
}

machine() {
  echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "- memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- disk under /tmp: $(df -h /tmp | awk 'NR==2 {print $1, $2}')"
  echo "- meridian $(git -C "$ROOT" rev-parse --short HEAD), $(etcd --version 2>/dev/null | head -1 || echo 'etcd absent')"
}
