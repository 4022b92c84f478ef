#!/usr/bin/env bash
# `npm run profile:gateway`: where this gateway spends its time under the peer benchmark's load.
# Starts the benchmark's Node subgraphs and this checkout's gateway (as `npm run bench:peers` runs
# it, policy layer on) under `node --cpu-prof`, loads it with autocannon (the benchmark's query, CONNS
# connections, DUR seconds), stops it, and prints the profile's top places and functions by self
# time (test/cpuprofile-top.ts). The profile (open it in Chrome DevTools or speedscope) stays in OUT.
# Needs the benchmark's work directory (`bash ../shared/peer-bench/setup.sh`, which bench:peers runs).
# Env: DUR (15), CONNS (50), OUT (a new folder under /tmp), PEER_BENCH_HOME (/tmp/peer-bench),
# PEER_SUBGRAPH_PORT (4200), PEER_GATEWAY_PORT (4000), GATEWAY_LIMITS (as bench:peers).
set -eu
# --help prints the comment above; any other argument is refused (its settings are the environment's).
case "${1:-}" in
  -h | --help) sed -n '2,/^set -eu$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) echo "$(basename "$0"): unknown argument '$1' (settings come from the environment; see --help)" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
work=${PEER_BENCH_HOME:-/tmp/peer-bench}
[ -x "$work/node_modules/.bin/autocannon" ] || { echo "profile: no peer benchmark in $work; run: bash ../shared/peer-bench/setup.sh" >&2; exit 2; }
DUR=${DUR:-15}; CONNS=${CONNS:-50}
sgport=${PEER_SUBGRAPH_PORT:-4200}; gwport=${PEER_GATEWAY_PORT:-4000}
out=${OUT:-$(mktemp -d /tmp/gateway-profile.XXXXXX)}
mkdir -p "$out"
sed "s#http://127\.0\.0\.1:4200/#http://127.0.0.1:$sgport/#g" "$work/supergraph.graphql" >"$out/supergraph.graphql"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

(cd "$work" && PORT=$sgport exec node subgraphs-node/server.mjs) >"$out/subgraphs.log" 2>&1 &
pids+=($!)
cd "$root"
SUPERGRAPH_SOURCE=file SUPERGRAPH_FILE="$out/supergraph.graphql" UNCLASSIFIED_FIELDS=allow PORT=$gwport HOST=127.0.0.1 \
  DATA_DIR="$out/data" LOG_LEVEL=warn \
  GATEWAY_LIMITS=${GATEWAY_LIMITS:-'{"anonymous":{"maxCost":30000,"ratePerWindow":1000000000000}}'} \
  node --cpu-prof --cpu-prof-dir="$out" --import tsx gateway/main.ts >"$out/gateway.log" 2>&1 &
gateway=$!
pids+=("$gateway")

payload="$work/payload.json"
for _ in $(seq 1 120); do
  if node -e 'fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json" }, body: require("node:fs").readFileSync(process.argv[2]) })
      .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://127.0.0.1:$gwport/graphql" "$payload"; then break; fi
  sleep 0.5
done
"$work/node_modules/.bin/autocannon" -c "$CONNS" -d "$DUR" -m POST -H 'content-type: application/json' -i "$payload" \
  "http://127.0.0.1:$gwport/graphql" >"$out/autocannon.txt" 2>&1
grep -E 'Req/Sec|Latency' "$out/autocannon.txt" | head -4 || true
kill -TERM "$gateway"
wait "$gateway" 2>/dev/null || true
profile=$(ls -S "$out"/*.cpuprofile | head -1)   # the main thread's (tsx's loader thread writes a small one too)
echo "# profile: $profile"
node --import tsx test/cpuprofile-top.ts "$profile" "${TOP:-25}"
