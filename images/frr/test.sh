#!/bin/sh
# Runs in the booted VM as the login user: the router works and the user can drive it.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }

systemctl is-active --quiet frr || fail "frr.service is not active"
for daemon in zebra bgpd ospfd; do
  pgrep -x "$daemon" >/dev/null || fail "$daemon is not running"
done
version=$(vtysh -c 'show version') || fail "vtysh -c 'show version' failed for $(id -un)"
echo "$version" | grep -q FRRouting || fail "unexpected 'show version' output: $version"

# A router forwards from boot.
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "IPv4 forwarding is off"
[ "$(cat /proc/sys/net/ipv6/conf/all/forwarding)" = 1 ] || fail "IPv6 forwarding is off"

# A configuration change through vtysh takes effect in the running daemon.
vtysh -c 'configure terminal' -c 'router bgp 65001' -c 'bgp router-id 192.0.2.1' -c 'end' >/dev/null \
  || fail "vtysh could not configure bgpd"
vtysh -c 'show running-config' | grep -q 'router bgp 65001' || fail "bgpd did not take the configuration"
echo "frr: ok ($(echo "$version" | head -n1))"
