#!/usr/bin/env bash
# Restart to ready after kill -9 with a full head: the peer's load generator
# (its directory given; not part of Hearth) fills a server's head with N
# profiles (6,000 make about 128 MiB of head, one hour of data never cut),
# the server is killed, and the time from exec to GET /ready answering 200
# is what replaying its log costs.
#
#	go build -o /tmp/hearth ./cmd/hearth && bash bench/replay/run.sh /tmp/hearth DIR
set -euo pipefail
hearth=$1 loadgen=$2 n=${N:-6000} port=${PORT:-4071}
data=$(mktemp -d)
trap 'kill ${pid:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
serve() { "$hearth" server --listen 127.0.0.1:$port --data "$data/data" --self-profile.interval 0 --otlp.grpc.listen= >>"$data/log" 2>&1 & pid=$!; }
serve
until curl -sf 127.0.0.1:$port/ready >/dev/null; do sleep 0.05; done
(cd "$loadgen" && go run ./loadgen -url http://127.0.0.1:$port -corpus corpus -n "$n" -workers 4 -settle 1s >/dev/null)
curl -s 127.0.0.1:$port/metrics | grep -E '^hearth_storage_(head_bytes|blocks) '
kill -9 $pid; wait $pid 2>/dev/null || true
echo "log: $(du -sh "$data/data/wal" | cut -f1)"
start=$(date +%s.%N)
serve
until curl -sf 127.0.0.1:$port/ready >/dev/null; do sleep 0.02; done
echo "restart to ready after kill -9: $(echo "$(date +%s.%N) - $start" | bc) s"
grep 'wal replayed' "$data/log" | tail -1
