#!/usr/bin/env bash
# Installs everything the pipeline and its tests need on a fresh Debian 12 machine (run as root), then the npm
# packages, and starts dockerd. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, one group per pipeline stage.
packages=(
  # build steps and tests
  ca-certificates git zstd xz-utils
  # Rootfs (ansible: a `playbook` runs through its community.general.chroot connection, which ansible-core lacks)
  debootstrap mmdebstrap debian-archive-keyring ansible
  # Kernel
  linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev ccache cpio dwarves kmod rsync
  debhelper-compat fakeroot dpkg-dev busybox-static
  # Qcow2Disk
  qemu-utils e2fsprogs fdisk grub-pc-bin grub-efi-amd64-bin grub2-common mtools dosfstools ovmf
  # Qcow2Disk.import's provisioning: virt-customize, whose appliance boots the host's kernel from /boot (a container
  # or a minimal host may have none: linux-image-amd64 puts one there)
  libguestfs-tools linux-image-amd64
  # BootTest (procps: pgrep, with which the tests check that no QEMU is left)
  qemu-system-x86 openssh-client sshpass procps
  # catalog page test
  chromium fonts-dejavu-core
  # ContainerImage and the local registry (curl: the registry's readiness check and tests; ping: across a stitched
  # interface)
  docker.io docker-registry iproute2 iptables curl iputils-ping
  # the registry that requires a login (authenticated pushes): htpasswd
  apache2-utils
  # remote build hosts test (two sshd on loopback)
  openssh-server
  # npm run lint: shell and Perl scripts
  shellcheck libperl-critic-perl
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages and starts dockerd)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

bash scripts/start-dockerd.sh
bash scripts/start-registry.sh
bash scripts/start-registry.sh --login
echo "setup: ready"
