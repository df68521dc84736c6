#!/usr/bin/env bash
# Gateway throughput of two `routec` binaries (e.g. two build profiles),
# measured in the same run and interleaved, so that whatever else the
# machine is doing weighs on both alike. `wrk` posts a small chat
# completion over 16 connections, closed loop, to a fake upstream directly
# and through each binary's `routec serve`, ROUNDS times in turn (the two
# gateways swap order each round); the
# table gives requests/s per round and the median ratio of each gateway to
# the direct path, and of the second binary to the first.
#
#   scripts/compare-gateway-builds.sh OLD_ROUTEC NEW_ROUTEC FAKE_UPSTREAM
#   ROUNDS=5 SECONDS_PER_RUN=8 scripts/compare-gateway-builds.sh …
#
# FAKE_UPSTREAM is a release `fake-upstream` binary
# (`cargo build --release -p fake-upstream`). Needs `wrk` (apt). Everything
# runs on 127.0.0.1; every server is stopped by its PID on exit.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 OLD_ROUTEC NEW_ROUTEC FAKE_UPSTREAM" >&2
  exit 2
fi
OLD="$1" NEW="$2" FAKE="$3"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
CONNECTIONS="${CONNECTIONS:-16}"
command -v wrk >/dev/null || { echo "error: needs wrk (apt-get install wrk)" >&2; exit 2; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a server in the background, stdout to $1; waits (bounded, 10 s)
# for its first stdout line, the bound address. Sets ADDR.
start_server() {
  local out="$1"; shift
  "$@" >"$out" 2>"$out.err" &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    if [ -s "$out" ]; then ADDR="$(head -n1 "$out")"; ADDR="${ADDR#listening on http://}"; return 0; fi
    sleep 0.05
  done
  echo "server did not start: $*" >&2; cat "$out.err" >&2; return 1
}

start_server "$WORK/fake.out" "$FAKE" --listen 127.0.0.1:0 --flavor openai
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
RUST_LOG=warn start_server "$WORK/old.out" "$OLD" serve --policy "$WORK/bench.route" --listen 127.0.0.1:0 --no-watch
GW_OLD="$ADDR"
RUST_LOG=warn start_server "$WORK/new.out" "$NEW" serve --policy "$WORK/bench.route" --listen 127.0.0.1:0 --no-watch
GW_NEW="$ADDR"

post_script() {
  cat >"$WORK/$1.lua" <<EOF
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"model":"$2","max_tokens":100,"messages":[{"role":"user","content":"Say hi"}]}'
EOF
}
post_script direct m
post_script gateway bench

# One wrk run: address, body script; prints requests/s, fails on any non-2xx.
run() {
  local out
  out="$(timeout 120 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$WORK/$2.lua" "http://$1/v1/chat/completions")"
  if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; return 1; fi
  awk '/^Requests\/sec:/ {printf "%.0f\n", $2}' <<<"$out"
}

run "$UPSTREAM" direct >/dev/null
run "$GW_OLD" gateway >/dev/null
run "$GW_NEW" gateway >/dev/null

echo "| round | direct rps | old rps | new rps | old / direct | new / direct | new / old |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  # Alternate which gateway goes first, so neither always runs right after
  # the direct path.
  d="$(run "$UPSTREAM" direct)"
  if [ $((r % 2)) -eq 1 ]; then
    o="$(run "$GW_OLD" gateway)"; n="$(run "$GW_NEW" gateway)"
  else
    n="$(run "$GW_NEW" gateway)"; o="$(run "$GW_OLD" gateway)"
  fi
  echo "$r $d $o $n" >>"$WORK/rows"
  awk -v r="$r" -v d="$d" -v o="$o" -v n="$n" \
    'BEGIN { printf "| %d | %d | %d | %d | %.3f | %.3f | %.3f |\n", r, d, o, n, o/d, n/d, n/o }'
done
sort -k1n "$WORK/rows" | awk '{ od[NR] = $3/$2; nd[NR] = $4/$2; no[NR] = $4/$3 }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END { printf "| median | | | | %.3f | %.3f | %.3f |\n", median(od, NR), median(nd, NR), median(no, NR) }'
echo "wrk $(wrk --version 2>&1 | head -n1 | awk "{print \$2}"), $CONNECTIONS connections, ${SECONDS_PER_RUN} s per run; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
