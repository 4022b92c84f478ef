#!/usr/bin/env bash
# `npm run bench:peers`: The Guild's federation gateway benchmark (../shared/peer-bench) on this
# checkout: plain @apollo/gateway, Hive Gateway and this gateway, one after another in one run, under
# the same load; prints each gateway's figures, then "ours/apollo X.XX ours/hive Y.YY".
#
# This gateway runs as the benchmark starts it (policy layer, audit, limits and metrics on; the
# response cache off, as the peers have none), with one
# operator setting the benchmark's query needs: its estimated cost is 24,420 (its nested lists have
# no @listSize, so each counts 10 items), over the anonymous budget of 2,000, so GATEWAY_LIMITS raises
# the anonymous budget to 30,000 and the anonymous rate allowance past what the load can spend. The
# limits stay on: a costlier operation is still refused.
#
# Env: PEER_BENCH_DIR (default ../shared/peer-bench beside this checkout), and the benchmark's own:
# DUR (20 s), CONNS (50), ROUNDS (2), PEER_BENCH_HOME (/tmp/peer-bench), PEER_SUBGRAPH_PORT,
# PEER_GATEWAY_PORT, HIVE_FLAGS. With the defaults it takes 3 to 4 minutes.
set -eu
# --help prints the comment above; any other argument is refused (its settings are the environment's).
case "${1:-}" in
  -h | --help) sed -n '2,/^set -eu$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) echo "$(basename "$0"): unknown argument '$1' (settings come from the environment; see --help)" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bench=${PEER_BENCH_DIR:-$root/../shared/peer-bench}
[ -f "$bench/run.sh" ] || { echo "bench:peers: no peer benchmark at $bench (set PEER_BENCH_DIR)" >&2; exit 2; }
cd "$root"
bash "$bench/setup.sh"
# The response cache off: the peers have none (their subgraphs report no data versions, so it would keep nothing anyway).
GATEWAY_LIMITS=${GATEWAY_LIMITS:-'{"anonymous":{"maxCost":30000,"ratePerWindow":1000000000000}}'} RESPONSE_CACHE=off \
  exec bash "$bench/run.sh"
