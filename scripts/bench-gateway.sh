#!/usr/bin/env bash
# The gateway's overhead: a load generator (oha) against a minimal fake
# upstream directly, then through `routec serve`, at concurrency 1, 16 and
# 64. Reports added p50/p99 latency, the throughput ratio, and the
# gateway's memory (VmHWM / VmRSS from /proc).
#
#   scripts/bench-gateway.sh            # about 2.5 minutes once built
#   SECONDS_PER_RUN=3 scripts/bench-gateway.sh
#
# Two kinds of run. Closed loop (each connection sends its next request as
# soon as the last answer arrives) saturates the machine: it gives
# throughput, and latencies at saturation. Open loop at a fixed rate far
# below saturation (1,000 requests/s over 16 connections) gives the latency
# the gateway adds when it is not queueing behind the CPU.
#
# Two reference proxies run in the same run, at 16 connections, to tell the
# cost of routec's own work from the cost of any proxy hop on this machine:
# `passthrough-proxy` (fake-upstream's second binary: the same axum +
# reqwest + mimalloc stack as `routec serve`, passing bytes through without
# parsing them) and, if `nginx` is on PATH, nginx as a keep-alive reverse
# proxy (`NGINX=0` skips it). For each proxy the table gives its CPU time
# per call, read from /proc/<pid>/stat around the run.
#
# Installs oha with `cargo install oha --locked` into target-bench/oha if it
# is not on PATH (a few minutes on 2 cores, once). Builds release binaries.
# Everything runs on 127.0.0.1; every server is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
CONCURRENCY="${CONCURRENCY:-1 16 64}"
RATE="${RATE:-1000}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the load generator ------------------------------------------------------
OHA="$(command -v oha || true)"
if [ -z "$OHA" ]; then
  OHA="$PWD/target-bench/oha/bin/oha"
  if [ ! -x "$OHA" ]; then
    echo "installing oha (cargo install oha --locked; a few minutes, once)..." >&2
    start=$(date +%s)
    cargo install oha --locked --root "$PWD/target-bench/oha" >&2
    echo "oha installed in $(( $(date +%s) - start )) s" >&2
  fi
fi

# --- release binaries --------------------------------------------------------
echo "building release binaries..." >&2
cargo build --release -q -p routec -p fake-upstream
BIN="$TARGET_DIR/release"

# Starts a server in the background, stdout to $1; waits (bounded, 10 s)
# for its first stdout line, the bound address. Sets ADDR and PID.
start_server() {
  local out="$1"; shift
  "$@" >"$out" 2>"$out.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 200); do
    if [ -s "$out" ]; then ADDR="$(head -n1 "$out")"; ADDR="${ADDR#listening on http://}"; return 0; fi
    sleep 0.05
  done
  echo "server did not start: $*" >&2; cat "$out.err" >&2; return 1
}

# Polls /readyz (bounded, 10 s).
wait_ready() {
  for _ in $(seq 1 200); do
    curl -sf "http://$1/readyz" >/dev/null && return 0
    sleep 0.05
  done
  echo "gateway not ready" >&2; return 1
}

# --- the fake upstream and the gateway ---------------------------------------
start_server "$WORK/fake.out" "$BIN/fake-upstream" --listen 127.0.0.1:0 --flavor openai
UPSTREAM="$ADDR"
cat >"$WORK/bench.route" <<EOF
provider upstream {
  adapter openai_compatible
  base_url "http://$UPSTREAM/v1"
  tier free
  data private
  model m {
    price free
    context 128k
    max_output 4k
    supports tools, json_schema, stream
  }
}

workload bench {
  data public
  max_tokens 100
  route upstream/m
}
EOF
# Logs at warn: the per-call info line is the access log, measured apart below.
RUST_LOG=warn start_server "$WORK/gw.out" "$BIN/routec" serve --policy "$WORK/bench.route" --listen 127.0.0.1:0 --no-watch
GATEWAY="$ADDR"
GW_PID="$PID"
wait_ready "$GATEWAY"

BODY_DIRECT='{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"Say hi"}]}'
BODY_GATEWAY='{"model":"bench","max_tokens":100,"messages":[{"role":"user","content":"Say hi"}]}'

# Reads oha's JSON report; prints "rps p50_ms p99_ms success% status-codes calls".
cat >"$WORK/parse.py" <<'PY'
import json, sys
r = json.load(sys.stdin)
s, p = r["summary"], r["latencyPercentiles"]
dist = r.get("statusCodeDistribution", {})
codes = json.dumps(dist, separators=(",", ":"))
print("%.0f %.3f %.3f %.1f %s %d" % (s["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, s["successRate"] * 100, codes, sum(dist.values())))
PY

# One oha run: url, body, concurrency, then extra oha flags.
run() {
  local url="$1" body="$2" c="$3"; shift 3
  # The fake keeps every request it saw; clear it so runs are alike.
  curl -sf -X POST "http://$UPSTREAM/__fake/reset" >/dev/null
  timeout 120 "$OHA" --no-tui --output-format json -z "${SECONDS_PER_RUN}s" -c "$c" "$@" -m POST \
    -H 'content-type: application/json' -d "$body" "$url" | python3 "$WORK/parse.py"
}
DIRECT="http://$UPSTREAM/v1/chat/completions"
THROUGH="http://$GATEWAY/v1/chat/completions"

echo "warming up..." >&2
SECONDS_PER_RUN=2 run "$DIRECT" "$BODY_DIRECT" 16 >/dev/null
SECONDS_PER_RUN=2 run "$THROUGH" "$BODY_GATEWAY" 16 >/dev/null

# Prints one table row from two parsed runs.
row() {
  python3 - "$@" <<'PY'
import sys
label, d, g = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
drps, dp50, dp99 = map(float, d[:3])
grps, gp50, gp99 = map(float, g[:3])
print(f"| {label} | {drps:.0f} | {grps:.0f} | {grps/drps:.2f} | {dp50:.3f} / {dp99:.3f} | {gp50:.3f} / {gp99:.3f} | {gp50-dp50:+.3f} / {gp99-dp99:+.3f} |")
PY
}

check() {
  local label="$1" result="$2"
  case "$result" in
    *' 100.0 {"200":'*) ;;
    *) echo "not every answer was a 200 at $label: $result" >&2 ;;
  esac
}

echo
echo "| load | direct rps | gateway rps | ratio | direct p50 / p99 (ms) | gateway p50 / p99 (ms) | added p50 / p99 (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $CONCURRENCY; do
  d="$(run "$DIRECT" "$BODY_DIRECT" "$c")"
  g="$(run "$THROUGH" "$BODY_GATEWAY" "$c")"
  check "concurrency $c" "$g"
  row "closed loop, $c connection(s)" "$d" "$g"
done
d="$(run "$DIRECT" "$BODY_DIRECT" 16 -q "$RATE")"
g="$(run "$THROUGH" "$BODY_GATEWAY" 16 -q "$RATE")"
check "$RATE/s" "$g"
row "open loop, $RATE req/s, 16 connections" "$d" "$g"

# --- reference proxies, 16 connections, closed loop ---------------------------
start_server "$WORK/pass.out" "$BIN/passthrough-proxy" --listen 127.0.0.1:0 --upstream "http://$UPSTREAM"
PASS="$ADDR"; PASS_PID="$PID"
NGINX_PID=""
if [ "${NGINX:-1}" != 0 ] && command -v nginx >/dev/null; then
  NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  upstream up { server $UPSTREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  nginx -c "$WORK/nginx.conf" -e "$WORK/nginx.err" 2>"$WORK/nginx.start.err" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break
    sleep 0.05
  done
fi

# CPU time (user + system, in clock ticks) of a process and its threads;
# for nginx, of its worker processes.
ticks() {
  if [ "$1" = "$NGINX_PID" ]; then
    local sum=0 t child
    for child in $(pgrep -P "$1"); do t="$(awk '{print $14 + $15}' "/proc/$child/stat")"; sum=$((sum + t)); done
    echo "$sum"
  else
    awk '{print $14 + $15}' "/proc/$1/stat"
  fi
}
HZ="$(getconf CLK_TCK)"

# One reference row: label, url, body, pid of the proxy (empty for direct),
# and optionally a run already made (then nothing is run).
ref_row() {
  local label="$1" url="$2" body="$3" pid="$4" t0="" t1="" result="${5:-}"
  if [ -z "$result" ]; then
    if [ -n "$pid" ]; then t0="$(ticks "$pid")"; fi
    result="$(run "$url" "$body" 16)"
    if [ -n "$pid" ]; then t1="$(ticks "$pid")"; fi
  fi
  check "$label" "$result"
  python3 - "$label" "$result" "$REF_DIRECT" "$t0" "$t1" "$HZ" <<'PY'
import sys
label, r, d, t0, t1, hz = sys.argv[1:7]
r = r.split()
rps, p50, p99, calls = float(r[0]), float(r[1]), float(r[2]), int(r[5])
drps = float(d.split()[0]) if d else rps
cpu = f"{(int(t1) - int(t0)) / int(hz) / calls * 1e6:.0f}" if t0 else "—"
print(f"| {label} | {rps:.0f} | {rps / drps:.2f} | {p50:.3f} / {p99:.3f} | {cpu} |")
PY
}

echo
echo "Reference proxies, closed loop, 16 connections (ratios against the direct row):"
echo
echo "| path | rps | ratio to direct | p50 / p99 (ms) | proxy CPU per call (µs) |"
echo "|---|---:|---:|---:|---:|"
REF_DIRECT="$(run "$DIRECT" "$BODY_DIRECT" 16)"
ref_row "direct (oha → fake)" "$DIRECT" "$BODY_DIRECT" "" "$REF_DIRECT"
if [ -n "$NGINX_PID" ]; then
  ref_row "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_DIRECT" "$NGINX_PID"
fi
ref_row "passthrough-proxy (axum + reqwest, no parsing)" "http://$PASS/v1/chat/completions" "$BODY_DIRECT" "$PASS_PID"
ref_row "routec serve" "$THROUGH" "$BODY_GATEWAY" "$GW_PID"

# The same paths at low load: what each hop adds when nothing queues.
echo
echo "Reference proxies, open loop, $RATE req/s, 16 connections (added latency against the direct row):"
echo
echo "| path | p50 / p99 (ms) | added p50 / p99 (ms) |"
echo "|---|---:|---:|"
OPEN_DIRECT="$(run "$DIRECT" "$BODY_DIRECT" 16 -q "$RATE")"
open_row() {
  local label="$1" result="${4:-}"
  if [ -z "$result" ]; then result="$(run "$2" "$3" 16 -q "$RATE")"; fi
  check "$label, $RATE/s" "$result"
  python3 - "$label" "$result" "$OPEN_DIRECT" <<'PY'
import sys
label, r, d = sys.argv[1:4]
p50, p99 = (float(x) for x in r.split()[1:3])
dp50, dp99 = (float(x) for x in d.split()[1:3])
print(f"| {label} | {p50:.3f} / {p99:.3f} | {p50 - dp50:+.3f} / {p99 - dp99:+.3f} |")
PY
}
open_row "direct (oha → fake)" "" "" "$OPEN_DIRECT"
if [ -n "$NGINX_PID" ]; then
  open_row "nginx" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_DIRECT"
fi
open_row "passthrough-proxy" "http://$PASS/v1/chat/completions" "$BODY_DIRECT"
open_row "routec serve" "$THROUGH" "$BODY_GATEWAY"

echo
grep -E '^(VmHWM|VmRSS)' "/proc/$GW_PID/status" | awk '{printf "gateway %s %.1f MB\n", $1, $2/1024}'

# The access log on: one info line per call, written to a file.
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
RUST_LOG=info start_server "$WORK/gw2.out" "$BIN/routec" serve --policy "$WORK/bench.route" --listen 127.0.0.1:0 --no-watch
GATEWAY="$ADDR"
wait_ready "$GATEWAY"
read -r grps gp50 gp99 _ _ < <(run "http://$GATEWAY/v1/chat/completions" "$BODY_GATEWAY" 16)
echo "with the info access log (to a file), closed loop, 16 connections: $grps rps, p50 $gp50 ms, p99 $gp99 ms"
echo "load generator: $("$OHA" --version); machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
