#!/bin/sh
# Enables the daemons routing lessons use and lets the login user run vtysh without sudo.
set -eu
sed -i -e 's/^bgpd=no/bgpd=yes/' -e 's/^ospfd=no/ospfd=yes/' /etc/frr/daemons
grep -q '^bgpd=yes' /etc/frr/daemons && grep -q '^ospfd=yes' /etc/frr/daemons

# One integrated configuration, readable by the frrvty group (the login user is in it).
cat > /etc/frr/vtysh.conf <<'CONF'
service integrated-vtysh-config
CONF
chown frr:frrvty /etc/frr/vtysh.conf /etc/frr/frr.conf
chmod 0660 /etc/frr/frr.conf
chmod 0640 /etc/frr/vtysh.conf
systemctl enable frr.service
