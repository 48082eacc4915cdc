#!/usr/bin/env bash
# Starts a namesrv and a three-node broker group on loopback from the repository
# root (after `make build`): namesrv 127.0.0.1:9876, brokers 10911/10921/10931,
# raft 40911/40912/40913, data under data/cluster/. Ctrl-C stops all four.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-./bin/raftmq}
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }
trap stop INT TERM EXIT
"$BIN" namesrv & pids+=($!)
for i in 0 1 2; do
  "$BIN" broker -c "conf/cluster/broker-n$i.conf" & pids+=($!)
done
wait
