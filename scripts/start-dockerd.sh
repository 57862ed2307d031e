#!/usr/bin/env bash
# Starts dockerd in the background unless one already answers; waits until it does.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
log=/var/log/antidote-dockerd.log
nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; see $log:" >&2
tail -n 20 "$log" >&2
exit 1
