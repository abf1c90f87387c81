#!/bin/bash
# Overhead of hearth agent on this host: both cores busy (two shell loops),
# about 50 processes of our own (the loops, 46 sleepers, the server), the
# agent pushing to a local server. For each rate, the agent's user+sys CPU
# over 60 s (after 10 s of start-up) as a share of one core, and its RSS.
# Needs root and a built binary:
#
#	go build -o /tmp/hearth ./cmd/hearth && sudo bash bench/agent/run.sh /tmp/hearth
#
# The in-kernel cost per sample comes from the BPF run-time statistics in
# the bpf package's test: go test -run TestBusyHost -v ./internal/agent/bpf
set -u
HEARTH=${1:-/tmp/hearth}
DATA=$(mktemp -d)
PORT=${PORT:-4096}
"$HEARTH" server --listen 127.0.0.1:$PORT --data "$DATA" --self-profile.interval 0 --otlp.grpc.listen= >"$DATA/server.log" 2>&1 &
SRV=$!
sh -c 'while :; do :; done' & B1=$!
sh -c 'while :; do :; done' & B2=$!
SLEEPERS=()
for _ in $(seq 1 46); do sleep 1000 & SLEEPERS+=($!); done
trap 'kill $B1 $B2 "${SLEEPERS[@]}" $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"' EXIT
sleep 1
echo "processes on the host: $(ls /proc | grep -c '^[0-9]')"
TCK=$(getconf CLK_TCK)
for hz in 19 99; do
	"$HEARTH" agent --server http://127.0.0.1:$PORT --frequency $hz --listen 127.0.0.1:4041 --log.level info >"$DATA/agent-$hz.log" 2>&1 &
	A=$!
	sleep 10
	c0=$(awk '{print $14+$15}' /proc/$A/stat); t0=$(date +%s.%N)
	sleep 60
	c1=$(awk '{print $14+$15}' /proc/$A/stat); t1=$(date +%s.%N)
	awk -v hz=$hz -v c0=$c0 -v c1=$c1 -v t0=$t0 -v t1=$t1 -v tck=$TCK \
		'BEGIN { printf "%d Hz: agent CPU %.2f s in %.0f s = %.2f %% of one core\n", hz, (c1-c0)/tck, t1-t0, 100*(c1-c0)/tck/(t1-t0) }'
	grep -E 'VmHWM|VmRSS' /proc/$A/status
	# The agent's own count of samples and losses since it started.
	curl -s http://127.0.0.1:4041/metrics | grep -E '^hearth_agent_(samples_total|samples_lost_total|drain_interval_seconds|symbol_cache_bytes|kernel_symbols_bytes)'
	kill -TERM $A; wait $A
	grep 'agent stats' "$DATA/agent-$hz.log" | tail -1
done
