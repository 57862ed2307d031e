#!/bin/sh
# Removes from the image tree what a build leaves behind and what must differ between VMs or builds: logs, host
# keys, machine ids, random seeds, caches. Runs inside the tree as the last command of every build.
#
# environment: ANTIDOTE_LESSON_SERVICES (units the lesson configuration sets up, space-separated),
#              SOURCE_DATE_EPOCH (the packed tree's timestamps are clamped to it)
set -eu

# sshd waits for what SSH needs, not for the network services: Debian orders ssh.service after network.target, which
# frr and most routing daemons are ordered before, so a router answered SSH only once its daemons had started (3 s
# of a TCG boot). So does systemd-user-sessions.service, which lets users log in (until it has run, /run/nologin
# refuses them): sshd answered, but the first login failed. Copies of the packages' units, made last so that they
# follow the installed packages, leave network.target out (sshd listens on the wildcard address and needs no
# configured interface), and sshd starts after systemd-user-sessions. What SSH answering still means: the host key
# is made, logins are allowed and the lesson's configuration applied (antidote-configure.service, its commands
# included, is before ssh.service); the lesson's services may still be starting. Nor does sshd's unit test its
# configuration with a separate `sshd -t` first: an extra start of sshd on the way to SSH, for a configuration that
# is the image's, fixed at build time (a broken one still fails the unit).
for unit in ssh.service systemd-user-sessions.service; do
  [ -f "/lib/systemd/system/$unit" ] || continue
  sed -e '/^After=/s/ *network\.target\b//' -e '/^After= *$/d' "/lib/systemd/system/$unit" >"/etc/systemd/system/$unit"
  if grep -q '^After=.*network\.target' "/etc/systemd/system/$unit"; then
    echo "finalize.sh: could not take network.target out of /lib/systemd/system/$unit" >&2
    exit 1
  fi
done
mkdir -p /etc/systemd/system/ssh.service.d
cat >/etc/systemd/system/ssh.service.d/10-antidote.conf <<UNIT
[Unit]
After=systemd-user-sessions.service

[Service]
ExecStartPre=
UNIT

# The lesson's services start after antidote-configure.service (docs/lessons.md): once, with the lesson's
# configuration, instead of with the image's and then again with the lesson's. While the VM boots they yield the vCPU
# to the units on the way to SSH, which start beside them (a fifth of the default weight; once booted, the default):
# a routing suite's daemons take seconds of a TCG vCPU to start, and with four VMs on two cores sshd's banner waited
# for them. Last, when packages have installed their units; a drop-in for a unit the image lacks does nothing.
for unit in ${ANTIDOTE_LESSON_SERVICES:-}; do
  mkdir -p "/etc/systemd/system/$unit.d"
  cat >"/etc/systemd/system/$unit.d/10-antidote-lesson.conf" <<UNIT
[Unit]
After=antidote-configure.service

[Service]
StartupCPUWeight=20
UNIT
done

rm -f /etc/ssh/ssh_host_*
# Empty, not missing: systemd then treats the first boot as such and generates the id.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
rm -f /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /etc/passwd- /etc/group- /etc/shadow- /etc/gshadow- /etc/subuid- /etc/subgid-
find /var/log -type f -delete
rm -rf /root/.bash_history /root/.cache /root/.lesshst /root/.wget-hsts
# /etc and /var are up to date with /usr: the packages were configured. Without these stamps every boot of the fresh
# overlay is an "update" and runs the units with ConditionNeedsUpdate= (systemd-sysusers on the way to SSH,
# systemd-update-done); /usr's time after packing is at most SOURCE_DATE_EPOCH, which the stamps name.
for stamp in /etc/.updated /var/.updated; do
  printf '# written by the image build (finalize.sh)\nTIMESTAMP_NSEC=%s000000000\n' "$SOURCE_DATE_EPOCH" >"$stamp"
done
find /tmp /var/tmp -mindepth 1 -delete
# Byte code written while packages were configured differs between builds; Python regenerates it when needed.
find /usr /etc /opt /var -xdev -type d -name __pycache__ -prune -exec rm -rf {} +
