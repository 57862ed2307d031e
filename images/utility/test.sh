#!/bin/sh
# Runs in the booted VM as the login user: every promised tool is there and works.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - <<'PY' || fail "a Python library is missing"
import jinja2, ncclient, netmiko, paramiko, requests, textfsm, yaml
print("python libraries: ok")
PY
ansible --version | head -n1 | grep -q '^ansible' || fail "ansible does not run"
ansible localhost -m ping -c local -o 2>/dev/null | grep -q SUCCESS || fail "ansible cannot run a module"
for tool in git jq curl ping traceroute nc dig iperf3; do
  command -v "$tool" >/dev/null || fail "$tool is missing"
done
echo '{"a": [1, 2]}' | jq -e '.a[1] == 2' >/dev/null || fail "jq does not work"
timeout 5 tcpdump -i lo -c 1 -n >/dev/null 2>&1 & capture=$!
sleep 1; ping -c 2 -q 127.0.0.1 >/dev/null
wait "$capture" || fail "tcpdump cannot capture as $(id -un)"
echo "utility: ok"
