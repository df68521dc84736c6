#!/usr/bin/env bash
# N `routec serve` instances sharing one `redis-server`, all on loopback,
# with the simulated policy beside this script: the layout of
# docs/deploy.md without Docker or systemd.
#
#   deploy/local.sh up [N]    start redis-server and N gateways (default 3)
#   deploy/local.sh status    each process and its /readyz
#   deploy/local.sh down      stop them by PID: gateways first (SIGTERM, they
#                             drain), then Redis
#   deploy/local.sh demo [N]  up, show what the instances share, down
#   deploy/local.sh lint      check compose.yaml parses (needs python3 + yaml)
#
# Every process runs in the background with its output in $ROUTEC_RUN_DIR
# (default ./.routec-local): redis.log, routec-I.log, and the PID files
# `down` reads. Gateways listen on free ports (printed by `up` and in
# routec-I.addr); Redis on a free port too. Env: ROUTEC (the binary, default
# `routec` on PATH), REDIS_SERVER (default `redis-server`).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=${ROUTEC_RUN_DIR:-$PWD/.routec-local}
routec=${ROUTEC:-routec}
redis_server=${REDIS_SERVER:-redis-server}
key=rk-local-demo-not-a-secret

die() {
  echo "local.sh: $*" >&2
  exit 1
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits until file $1 has a line matching $2, for at most $3 tenths of a
# second, while the process of PID file $4 lives.
wait_line() {
  local file=$1 pattern=$2 tenths=$3 pidfile=$4 i
  for ((i = 0; i < tenths; i++)); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    alive "$pidfile" || return 1
    sleep 0.1
  done
  return 1
}

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

start_redis() {
  local port
  for _ in 1 2 3; do
    port=$(free_port)
    "$redis_server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      </dev/null >"$run/redis.log" 2>&1 &
    echo $! >"$run/redis.pid"
    if wait_line "$run/redis.log" "Ready to accept connections" 100 "$run/redis.pid"; then
      echo "redis://127.0.0.1:$port/0" >"$run/redis.url"
      return
    fi
    kill "$(cat "$run/redis.pid")" 2>/dev/null || true
    rm -f "$run/redis.pid"
  done
  die "redis-server did not start; see $run/redis.log"
}

start_gateway() {
  local i=$1 url=$2 n=$3
  "$routec" serve --policy "$here/policy.route" --keys "$here/keys.toml" \
    --budget-store "$url" --instances "$n" --listen 127.0.0.1:0 --drain-timeout 10 \
    </dev/null >"$run/routec-$i.out" 2>"$run/routec-$i.log" &
  echo $! >"$run/routec-$i.pid"
  wait_line "$run/routec-$i.out" "^listening on http://" 300 "$run/routec-$i.pid" ||
    die "gateway $i did not start; see $run/routec-$i.log"
  sed -n 's|^listening on http://||p' "$run/routec-$i.out" | head -n 1 >"$run/routec-$i.addr"
}

up() {
  local n=$1 i
  [[ $n =~ ^[1-9][0-9]?$ ]] || die "N must be 1 to 99, not \`$n\`"
  mkdir -p "$run"
  for f in "$run"/*.pid; do
    if alive "$f"; then die "already running (see $run); run \`deploy/local.sh down\` first"; fi
  done
  rm -f "$run"/*.pid "$run"/*.addr
  start_redis
  local url
  url=$(cat "$run/redis.url")
  for i in $(seq "$n"); do
    start_gateway "$i" "$url" "$n"
  done
  echo "redis: $url"
  for i in $(seq "$n"); do
    echo "routec $i: http://$(cat "$run/routec-$i.addr") (pid $(cat "$run/routec-$i.pid"))"
  done
}

# SIGTERM, then wait for the exit (a gateway drains first), then SIGKILL.
stop() {
  local pidfile=$1 tenths=$2 pid i
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tenths; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

down() {
  [[ -d $run ]] || return 0
  for f in "$run"/routec-*.pid; do
    stop "$f" 150
  done
  stop "$run/redis.pid" 50
  echo "stopped"
}

status() {
  for f in "$run"/routec-*.pid; do
    [[ -f $f ]] || continue
    local i addr
    i=$(basename "$f" .pid)
    addr=$(cat "$run/$i.addr")
    if alive "$f"; then
      echo "$i: pid $(cat "$f"), http://$addr, readyz $(curl -s --max-time 2 "http://$addr/readyz")"
    else
      echo "$i: not running"
    fi
  done
  if alive "$run/redis.pid"; then echo "redis: $(cat "$run/redis.url")"; else echo "redis: not running"; fi
}

# A request with an Idempotency-Key to gateway $1; prints the
# x-routec-served header and leaves the body in $run/body-$1.
ask() {
  local i=$1 addr
  addr=$(cat "$run/routec-$i.addr")
  curl -sS --fail-with-body --max-time 20 -o "$run/body-$i" -D "$run/headers-$i" \
    -H "authorization: Bearer $key" -H "content-type: application/json" \
    -H "idempotency-key: order-42" \
    -d '{"model": "chat", "messages": [{"role": "user", "content": "Where is my order?"}]}' \
    "http://$addr/v1/chat/completions"
  tr -d '\r' <"$run/headers-$i" | sed -n 's/^x-routec-served: //Ip'
}

demo() {
  local n=$1 first again
  ((n >= 2)) || die "the demo needs at least 2 gateways"
  first=$(ask 1)
  again=$(ask 2)
  echo "Idempotency-Key order-42 on gateway 1: $first; the client's retry on gateway 2: $again"
  [[ $first == fresh && $again == replayed ]] || die "expected fresh then replayed"
  cmp -s "$run/body-1" "$run/body-2" || die "the replayed body differs"
  echo "same body, one upstream call"
  local addr spent
  addr=$(cat "$run/routec-$n.addr")
  spent=$(curl -sS --fail-with-body --max-time 20 -H "authorization: Bearer $key" \
    "http://$addr/v1/routec/budgets" | grep -o '"committed":[0-9]*' | head -n 1 | cut -d: -f2)
  echo "gateway $n sees the $spent tokens spent through gateway 1 (one budget, in Redis)"
  [[ -n $spent && $spent != 0 ]] || die "gateway $n does not see the shared budget"
}

lint() {
  python3 - "$here/compose.yaml" <<'PY'
import sys
import yaml
doc = yaml.safe_load(open(sys.argv[1]))
services = doc["services"]
gateways = [s for s in services if s.startswith("routec")]
assert "redis" in services and len(gateways) >= 2, services
for s in gateways:
    assert "redis" in services[s]["depends_on"], s
print(f"compose.yaml: redis, {len(gateways)} gateways, {', '.join(s for s in services if s != 'redis' and not s.startswith('routec'))}")
PY
}

case ${1:-} in
  up) up "${2:-3}" ;;
  down) down ;;
  status) status ;;
  demo)
    n=${2:-3}
    trap down EXIT
    trap 'exit 130' INT TERM
    up "$n"
    demo "$n"
    ;;
  lint) lint ;;
  *) die "usage: deploy/local.sh up [N] | status | down | demo [N] | lint" ;;
esac
