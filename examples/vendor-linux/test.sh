#!/bin/sh
# Runs in the booted VM as the provisioned login user, after the standard checks (password login, sudo -n, NICs,
# services): what the provisioning put on the vendor's disk is there.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -un)" = netops ] || fail "logged in as $(id -un), expected the provisioned netops"
sudo -n sshd -T 2>/dev/null | grep -qx 'passwordauthentication yes' || fail "sshd does not accept passwords"
grep -q "provisioned for this lab" /etc/motd || fail "/etc/motd is not the provisioned banner"
[ "$(stat -c %a /etc/motd)" = 644 ] || fail "/etc/motd has mode $(stat -c %a /etc/motd), expected 644"

# The first-boot command runs once, early in the first boot; give it a moment when SSH was quicker.
i=0
until [ -s /var/lib/antidote-first-boot ]; do
  i=$((i + 1))
  [ "$i" -le 60 ] || fail "the first-boot command did not run (no /var/lib/antidote-first-boot)"
  sleep 1
done
echo "vendor-linux: ok (first boot at $(cat /var/lib/antidote-first-boot))"
