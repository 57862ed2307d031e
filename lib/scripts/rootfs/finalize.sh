#!/bin/sh
# Removes from the image tree what a build leaves behind and what must differ between VMs or builds: logs, host
# keys, machine ids, random seeds, caches. Runs inside the tree as the last command of every build.
#
# environment: ANTIDOTE_LESSON_SERVICES (units the lesson configuration sets up, space-separated)
set -eu

# The lesson's services start after antidote-configure.service (docs/lessons.md): once, with the lesson's
# configuration, instead of with the image's and then again with the lesson's. Last, when packages have installed
# their units; a drop-in for a unit the image lacks does nothing.
for unit in ${ANTIDOTE_LESSON_SERVICES:-}; do
  mkdir -p "/etc/systemd/system/$unit.d"
  cat >"/etc/systemd/system/$unit.d/10-antidote-lesson.conf" <<UNIT
[Unit]
After=antidote-configure.service
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
find /tmp /var/tmp -mindepth 1 -delete
# Byte code written while packages were configured differs between builds; Python regenerates it when needed.
find /usr /etc /opt /var -xdev -type d -name __pycache__ -prune -exec rm -rf {} +
