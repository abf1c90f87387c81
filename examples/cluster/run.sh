#!/usr/bin/env bash
# Runs a Hearth cluster on one machine: versitygw as its S3 server, two
# ingesters, one querier and one compactor, all on one bucket. Run it from
# the repository root:
#
#   bash examples/cluster/run.sh            # start it; Ctrl-C stops it all
#   bash examples/cluster/run.sh --smoke    # start it, check it, stop it
#
# Environment:
#   HEARTH  the hearth binary (default: built from this checkout)
#   WORK    directory for the bucket, the data directories and the logs
#           (default: a new temporary directory)
#   PORT    first port (default 4100): querier PORT, ingesters PORT+1 and
#           PORT+2, compactor PORT+3, S3 PORT+9
#
# Send writes to the ingesters (behind a load balancer in production: any
# ingester takes any write), queries to the querier.
set -euo pipefail

smoke=false
case "${1:-}" in
--smoke) smoke=true ;;
"") ;;
*) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

PORT=${PORT:-4100}
WORK=${WORK:-$(mktemp -d /tmp/hearth-cluster.XXXXXX)}
mkdir -p "$WORK"
q=127.0.0.1:$PORT
i1=127.0.0.1:$((PORT + 1))
i2=127.0.0.1:$((PORT + 2))
c=127.0.0.1:$((PORT + 3))
s3=127.0.0.1:$((PORT + 9))

if [ -z "${HEARTH:-}" ]; then
	HEARTH=$WORK/hearth
	go build -o "$HEARTH" ./cmd/hearth
fi
vgw=$(command -v versitygw || true)
if [ -z "$vgw" ]; then
	vgw=$(go env GOPATH)/bin/versitygw
	[ -x "$vgw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

pids=()
stop() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap stop EXIT

# versitygw's posix backend keeps each bucket as a directory of its root:
# making the directory makes the bucket.
mkdir -p "$WORK/s3/hearth"
ROOT_ACCESS_KEY_ID= ROOT_SECRET_ACCESS_KEY= "$vgw" --access hearth --secret hearth-secret \
	--port "$s3" --quiet posix "$WORK/s3" >"$WORK/versitygw.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://$s3/" && break
	sleep 0.1
done

# Every instance of a bucket has the same storage section.
cat >"$WORK/hearth.yaml" <<YAML
storage:
  bucket:
    type: s3
    config:
      bucket: hearth
      endpoint: $s3
      insecure: true
      access_key: hearth
      secret_key: hearth-secret
YAML

# serve NAME ADDR FLAGS... starts one instance, its log in WORK/NAME.log.
serve() {
	local name=$1 addr=$2
	shift 2
	"$HEARTH" server --config "$WORK/hearth.yaml" --data "$WORK/$name" --listen "$addr" \
		--otlp.grpc.listen= "$@" >"$WORK/$name.log" 2>&1 &
	pids+=($!)
}
# A short cut period, so that queriers find blocks in the bucket soon and
# ingesters hold little; the compactor merges the small blocks.
serve ingester1 "$i1" --target ingester --storage.block-duration 5m
serve ingester2 "$i2" --target ingester --storage.block-duration 5m
serve compactor "$c" --target compactor
serve querier "$q" --target querier --ingesters "$i1,$i2"

for addr in "$i1" "$i2" "$c" "$q"; do
	for _ in $(seq 1 300); do
		curl -sf "http://$addr/ready" >/dev/null && break
		sleep 0.1
	done
	curl -sf "http://$addr/ready" >/dev/null || {
		echo "hearth on $addr is not ready; its log is in $WORK" >&2
		exit 1
	}
done

echo "querier    http://$q (UI and every query API)"
echo "ingesters  http://$i1 http://$i2 (writes)"
echo "compactor  http://$c (/metrics)"
echo "S3         $s3, bucket hearth, under $WORK/s3"
echo "logs       $WORK/*.log"

if ! $smoke; then
	echo "Ctrl-C stops them all."
	wait
	exit 0
fi

# The smoke check: one profile to each ingester, and events; the querier
# answers with their sum at once (from the ingesters' heads), and again
# once the ingesters have uploaded their blocks.
now=$(date +%s)
curl -sf -X POST --data-binary $'main;checkout;db.Query 30\nmain;checkout;render 10' \
	"http://$i1/ingest?name=shop&format=folded&from=$now&until=$((now + 10))" >/dev/null
curl -sf -X POST --data-binary $'main;checkout;db.Query 20' \
	"http://$i2/ingest?name=shop&format=folded&from=$now&until=$((now + 10))" >/dev/null
for i in 1 2; do
	addr=$i1
	[ "$i" = 2 ] && addr=$i2
	curl -sf -X POST -H 'Content-Type: application/x-ndjson' \
		--data-binary "{\"time\": $now, \"name\": \"GET /cart\", \"service\": \"shop\", \"duration_ms\": 12}" \
		"http://$addr/api/v1/events" >/dev/null
done

check() {
	local when=$1 total events
	total=$("$HEARTH" query 'cpu{service_name="shop"}' --from $((now - 60)) --until $((now + 60)) \
		--server "http://$q" --output json | grep -o '"total":[0-9]*' | head -1 | cut -d: -f2)
	events=$("$HEARTH" events '{ resource.service.name = "shop" }' --calc count --from $((now - 60)) \
		--until $((now + 60)) --server "http://$q" --output json | grep -o '"count":[0-9]*' | head -1 | cut -d: -f2)
	# 60 folded samples, at the ingest API's default 100 Hz: 0.6 s of CPU.
	if [ "$total" != 600000000 ] || [ "$events" != 2 ]; then
		echo "smoke: $when: the querier answers a total of ${total:-none} ns and ${events:-no} events; want 600000000 and 2" >&2
		return 1
	fi
	echo "smoke: $when: the querier answers a total of 600000000 ns (60 samples) and 2 events"
}
check "before any upload"
curl -sf -X POST "http://$i1/-/flush" >/dev/null
curl -sf -X POST "http://$i2/-/flush" >/dev/null
check "after the uploads"
echo "smoke: ok"
