#!/usr/bin/env bash
# Starts the local stack's registry (Debian's docker-registry) on 127.0.0.1:5000 unless one already answers; waits
# until it does. Loopback only, no auth: dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
set -euo pipefail
addr=${ANTIDOTE_REGISTRY_ADDR:-127.0.0.1:5000}
dir=${ANTIDOTE_REGISTRY_DIR:-/var/lib/antidote-registry}
answers() { curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null; }
if answers; then exit 0; fi
mkdir -p "$dir"
config=$dir/config.yml
cat >"$config" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
log=/var/log/antidote-registry.log
nohup docker-registry serve "$config" >"$log" 2>&1 </dev/null &
for _ in $(seq 1 40); do
  if answers; then exit 0; fi
  sleep 0.25
done
echo "start-registry: no registry answered on $addr within 10 s; see $log:" >&2
tail -n 20 "$log" >&2
exit 1
