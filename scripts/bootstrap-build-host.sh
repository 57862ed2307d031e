#!/usr/bin/env bash
# Makes a fresh Debian 12 machine an antidote-images build host, then checks it. Run as root on the host, e.g. from
# the controller (the machine that runs `pulumi up`):
#
#   ssh root@builder-3 bash -s -- "$(git remote get-url origin)" "$(git rev-parse HEAD)" < scripts/bootstrap-build-host.sh
#
# usage: bootstrap-build-host.sh <git-url> <commit> [<dir>=/opt/antidote-images]
# It installs git, clones the project at exactly <commit> into <dir> (the build host's `dir`), runs scripts/setup.sh
# there (Debian packages, npm packages, dockerd), checks the step command, dockerd and KVM, and prints the entry to add
# to antidote-images:buildHosts. Safe to run again, e.g. to move the host to a new commit.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: bootstrap-build-host.sh <git-url> <commit> [<dir>]" >&2
  exit 2
fi
repo=$1
commit=$2
dir=${3:-/opt/antidote-images}

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: run as root (it installs Debian packages and starts dockerd)" >&2
  exit 1
fi
# shellcheck source=/dev/null # the host's own
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
  echo "bootstrap: expected Debian 12, found ${PRETTY_NAME:-an unknown system}" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
  echo "bootstrap: the project needs Node.js >= 20.19 (Debian 12 ships 18); install it first, then run this again" >&2
  exit 1
fi

if ! command -v git >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git ca-certificates
fi
if [ ! -d "$dir/.git" ]; then
  git clone --quiet "$repo" "$dir"
fi
git -C "$dir" fetch --quiet origin
git -C "$dir" -c advice.detachedHead=false checkout --quiet --force "$commit"
if [ -n "$(git -C "$dir" status --porcelain --untracked-files=no)" ]; then
  echo "bootstrap: $dir has local changes; steps would refuse to build (their keys would differ)" >&2
  exit 1
fi

bash "$dir/scripts/setup.sh"

echo "bootstrap: checks"
fail=0
check() {
  if "${@:2}" >/dev/null 2>&1; then echo "  ok    $1"; else echo "  FAIL  $1"; fail=1; fi
}
check "project at $(git -C "$dir" rev-parse --short HEAD)" test "$(git -C "$dir" rev-parse HEAD)" = "$(git -C "$dir" rev-parse "$commit^{commit}")"
check "step command runs" node "$dir/bin/antidote-images.js" step --help
check "dockerd answers" docker info
capabilities=()
# /dev/kvm can exist and still hang guests: only a short probe that boots nothing counts.
if [ -c /dev/kvm ] && timeout 10 qemu-system-x86_64 -accel kvm -machine none -display none -S -daemonize -pidfile /tmp/kvm-probe.pid; then
  kill "$(cat /tmp/kvm-probe.pid)" 2>/dev/null || true
  capabilities+=(kvm)
  echo "  ok    kvm"
else
  echo "  -     no usable KVM: boot tests (which need kvm) will not be assigned here"
fi
[ "$fail" -eq 0 ] || exit 1

echo "bootstrap: ready. Add this host to antidote-images:buildHosts (stacks/Pulumi.<stack>.yaml):"
cat <<ENTRY
    - name: $(hostname -s)
      host: $(hostname -f)
      user: <the user whose authorized_keys holds the controller's key>
      hostKey: $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || echo "<ssh-keyscan -t ed25519 $(hostname -f)>")
      capacity: $(nproc)
      capabilities: [$(IFS=,; echo "${capabilities[*]}")]
      dir: $dir
ENTRY
