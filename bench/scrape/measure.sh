#!/usr/bin/env bash
# What scraping costs the server: 200 fake Go services (go run ./bench/scrape)
# scraped on all six default endpoints every 10 s; the server's user+sys CPU
# over 60 s after 30 s of start-up, its peak RSS, and its scrape counters.
#
#	go build -o /tmp/hearth ./cmd/hearth && bash bench/scrape/measure.sh /tmp/hearth
set -euo pipefail
cd "$(dirname "$0")/../.."
hearth=${1:-/tmp/hearth}
work=$(mktemp -d)
port=${PORT:-4049}
go build -o "$work/targets" ./bench/scrape
"$work/targets" -out "$work/config.yml" >"$work/targets.log" 2>&1 &
targets=$!
trap 'kill $targets ${server:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/config.yml" ] && break; sleep 0.1; done
"$hearth" server --listen 127.0.0.1:$port --data "$work/data" --config "$work/config.yml" \
	--self-profile.interval 0 --otlp.grpc.listen= >"$work/server.log" 2>&1 &
server=$!
sleep 30
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$server/stat; }
scrapes() { curl -s http://127.0.0.1:$port/metrics | awk '$1 == "hearth_scrape_scrapes_total" {print $2}'; }
c0=$(cpu) s0=$(scrapes)
sleep 60
c1=$(cpu) s1=$(scrapes)
awk -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" -v tck="$tck" 'BEGIN {
	printf "server CPU %.2f s in 60 s = %.1f %% of one core; %d scrapes, %.2f ms CPU per scrape\n",
		(c1-c0)/tck, 100*(c1-c0)/tck/60, s1-s0, 1000*(c1-c0)/tck/(s1-s0) }'
grep VmHWM /proc/$server/status
curl -s http://127.0.0.1:$port/metrics | grep -E '^hearth_scrape_(failures_total|targets)' || true
