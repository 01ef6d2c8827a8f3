#!/usr/bin/env bash
# Render the sharded load test's manifests for N shards.
# Usage: render.sh SHARDS USERS DURATION [START_AT] > loadtest.yaml
#   START_AT: RFC 3339 UTC; default two minutes from now, time enough for
#   the pods to be scheduled and pull the image (a shard more than 5 s late
#   refuses to start, exit 2).
# Then:
#   kubectl apply -f runs-pvc.yaml
#   render.sh 4 2000 10m | kubectl apply -f -
#   kubectl wait --for=condition=complete job/clw-loadtest --timeout=20m
#   kubectl apply -f merge.yaml && kubectl logs -f job/clw-loadtest-merge
set -euo pipefail
SHARDS=${1:?number of shards}
USERS=${2:?users over all shards}
DURATION=${3:?duration, e.g. 10m}
START_AT=${4:-$(date -u -d '+2 minutes' +%FT%TZ)}
HERE=$(cd "$(dirname "$0")" && pwd)
sed -e "s/__SHARDS__/$SHARDS/g" -e "s/__USERS__/$USERS/g" \
    -e "s/__DURATION__/$DURATION/g" -e "s/__START_AT__/$START_AT/g" \
    "$HERE/shards.yaml"
