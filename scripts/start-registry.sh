#!/usr/bin/env bash
# Starts a loopback registry (Debian's docker-registry) unless one already answers on its address; waits until it
# does. dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP) by default, with or without a login.
#   start-registry.sh          the local stack's registry on 127.0.0.1:5000, no login
#   start-registry.sh --login  a registry that requires a login (htpasswd), on 127.0.0.1:5443, for the tests of
#                              authenticated pushes: user antidote-test, a random password made once and kept in
#                              <dir>/password (root only; a test credential, never a real one)
set -euo pipefail
if [ "${1:-}" = --login ]; then
  addr=${ANTIDOTE_LOGIN_REGISTRY_ADDR:-127.0.0.1:5443}
  dir=${ANTIDOTE_LOGIN_REGISTRY_DIR:-/var/lib/antidote-registry-login}
  log=/var/log/antidote-registry-login.log
  expected=401
else
  addr=${ANTIDOTE_REGISTRY_ADDR:-127.0.0.1:5000}
  dir=${ANTIDOTE_REGISTRY_DIR:-/var/lib/antidote-registry}
  log=/var/log/antidote-registry.log
  expected=200
fi
# An anonymous GET /v2/ gets 200 from an open registry, 401 from one that requires a login.
answers() { [ "$(curl -sS -o /dev/null -w '%{http_code}' "http://$addr/v2/" 2>/dev/null)" = "$expected" ]; }
if answers; then exit 0; fi
mkdir -p "$dir"
auth=
if [ "$expected" = 401 ]; then
  if [ ! -s "$dir/password" ] || [ ! -s "$dir/htpasswd" ]; then
    (
      umask 077
      head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' >"$dir/password"
      # bcrypt, the only hash docker-registry accepts; the password goes on stdin, not the command line.
      htpasswd -iBc "$dir/htpasswd" antidote-test <"$dir/password" 2>/dev/null
    )
  fi
  auth="auth:
  htpasswd:
    realm: antidote-test
    path: $dir/htpasswd"
fi
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
$auth
CONFIG
nohup docker-registry serve "$config" >"$log" 2>&1 </dev/null &
for _ in $(seq 1 40); do
  if answers; then exit 0; fi
  sleep 0.25
done
echo "start-registry: no registry answered on $addr within 10 s; see $log:" >&2
tail -n 20 "$log" >&2
exit 1
