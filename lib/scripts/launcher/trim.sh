#!/bin/sh
# Runs in the launcher's root filesystem after its packages are installed. A container runs one process tree
# (tini → launch script → QEMU): no init, device manager, login daemon, sudo or Perl. Every Rootfs has them (a VM
# needs them; usrmerge brings Perl along); in the launcher they would be a third of the image. iso-codes is data
# that only the translations of a GStreamer library (pulled in by SPICE, which QEMU links) would read.
set -eu
SUDO_FORCE_REMOVE=yes dpkg --purge --force-depends --force-remove-protected --force-remove-essential \
  systemd-sysv systemd libpam-systemd udev dbus dbus-bin dbus-daemon dbus-session-bus-common \
  dbus-system-bus-common dbus-user-session openssh-server openssh-sftp-server sudo iso-codes \
  usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl libperl5.36 perl-modules-5.36
