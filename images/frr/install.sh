#!/bin/sh
# Enables the daemons routing lessons use and lets the login user run vtysh without sudo.
set -eu
sed -i -e 's/^bgpd=no/bgpd=yes/' -e 's/^ospfd=no/ospfd=yes/' /etc/frr/daemons
grep -q '^bgpd=yes' /etc/frr/daemons && grep -q '^ospfd=yes' /etc/frr/daemons

# watchfrr starts the daemons and then loads frr.conf (vtysh -b) in one background job, which it kills after its
# restart timeout, 20 s by default: a VM under TCG on a busy host takes longer, and its routers came up with no
# configuration. Lab VMs give it 180 s.
sed -i 's/^#\?watchfrr_options=.*/watchfrr_options="--restart-timeout 180"/' /etc/frr/daemons
grep -q '^watchfrr_options="--restart-timeout 180"$' /etc/frr/daemons

# A router forwards: IPv4 and IPv6 forwarding on from boot, so a lesson needs no command for it (and none that would
# run after frr has started, on the way to SSH).
cat > /etc/sysctl.d/90-frr-forwarding.conf <<'SYSCTL'
net.ipv4.ip_forward = 1
net.ipv6.conf.all.forwarding = 1
SYSCTL

# One integrated configuration, readable by the frrvty group (the login user is in it).
cat > /etc/frr/vtysh.conf <<'CONF'
service integrated-vtysh-config
CONF
chown frr:frrvty /etc/frr/vtysh.conf /etc/frr/frr.conf
chmod 0660 /etc/frr/frr.conf
chmod 0640 /etc/frr/vtysh.conf
systemctl enable frr.service
