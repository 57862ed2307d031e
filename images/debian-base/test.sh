#!/bin/sh
# Runs in the booted VM as the login user, after the standard checks (login, sudo, hostname, DHCP, NICs,
# services, failed units). Checks what the base is for: a clean host other images and lessons can rely on.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }

# systemd reached its target (degraded would mean a failed unit).
state=$(systemctl is-system-running || true)
[ "$state" = running ] || fail "systemd state is '$state', expected 'running'"

# Host keys were made at first boot, not shipped in the image.
ls /etc/ssh/ssh_host_ed25519_key >/dev/null 2>&1 || sudo -n test -f /etc/ssh/ssh_host_ed25519_key \
  || fail "no SSH host key: first-boot generation did not run"

# The kernel can mount lesson files (virtio 9p) and run network lessons (bridges, VLANs).
grep -qw 9p /proc/filesystems || fail "the kernel has no 9p file system"
{ sudo -n ip link add name t-br0 type bridge && sudo -n ip link del t-br0; } || fail "cannot create a bridge"
{ sudo -n ip link add link eth1 name eth1.10 type vlan id 10 && sudo -n ip link del eth1.10; } || fail "cannot create a VLAN"

# Nothing tries to reach the outside world from a lab VM.
if systemctl is-enabled apt-daily.timer >/dev/null 2>&1; then fail "apt-daily.timer is enabled"; fi

grep -q "antidote lab VM" /etc/motd || fail "the login banner is missing"
echo "debian-base: ok"
