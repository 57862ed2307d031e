#!/bin/sh
# Runs one command inside an image tree. The rootfs step starts this script as PID 1 of fresh namespaces
# (`unshare --mount --propagation private --pid --uts --ipc --fork --kill-child`), so the mounts below are never
# visible to the host and vanish, together with every process the command left behind (daemons a package or a
# hook started), as soon as the command ends -- however it ends, SIGKILL included.
#
# usage: chroot.sh [--on-host] ROOT STAGE COMMAND [ARG...]
#   --on-host  run COMMAND on the host, in these namespaces, with the tree mounted as below: for a tool that
#              enters the tree by itself (ansible-playbook with its chroot connection)
#   ROOT       the image tree
#   STAGE      host directory shown read-only at /run/antidote in the tree (hooks, files, provisioning scripts)
set -eu

on_host=false
if [ "$1" = --on-host ]; then
  on_host=true
  shift
fi
root=$1
stage=$2
shift 2

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"

# A minimal /dev of our own rather than the host's: package scripts see no host disks.
mount -t tmpfs -o mode=0755,nosuid dev "$root/dev"
chardev() { mknod -m 0666 "$root/dev/$1" c "$2" "$3"; }
chardev null 1 3
chardev zero 1 5
chardev full 1 7
chardev random 1 8
chardev urandom 1 9
chardev tty 5 0
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev shm "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev run "$root/run"
mkdir "$root/run/antidote"
mount --bind "$stage" "$root/run/antidote"
mount -o remount,bind,ro "$root/run/antidote"

# Name resolution for hooks that download: a copy of the host's resolv.conf laid over the image's own, so what
# the image ships is untouched. A tree whose resolv.conf is a symlink (systemd-resolved) keeps it and gets no DNS.
resolv="$root/etc/resolv.conf"
if [ ! -e "$resolv" ] && [ ! -L "$resolv" ]; then
  : >"$resolv"
fi
if [ -f "$resolv" ] && [ ! -L "$resolv" ]; then
  cat /etc/resolv.conf >"$root/run/host-resolv.conf"
  mount --bind "$root/run/host-resolv.conf" "$resolv"
fi

# Not exec: PID 1 ignores signals it has no handler for, so the command runs as a child that SIGTERM reaches.
status=0
if [ "$on_host" = true ]; then
  "$@" || status=$?
else
  chroot "$root" "$@" || status=$?
fi
exit "$status"
