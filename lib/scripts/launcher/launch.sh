#!/bin/bash
# The entrypoint of every lab image: boots the image's disk in QEMU inside the container (tini is PID 1, this is
# its child). NIC 0 is QEMU user-mode networking with the declared ports forwarded from the container's addresses;
# NIC i (i >= 1) is stitched to the container's eth<i> with tc mirred; the lesson directory is exported over
# virtio-9p; the serial console is served on a TCP port and copied to the container log; the VM boots on a fresh
# overlay at every start; SIGTERM powers the VM down. An image that holds its disk's kernel boots it directly on QEMU's
# microvm (virtio-mmio devices, no firmware or GRUB), and restores the VM from the image's snapshot of it when it has
# one that fits (TCG); a vendor disk boots on the pc machine by firmware and its own boot loader. See
# docs/container.md and docs/containerlab.md.
#
# `antidote-launch --snapshot DIR` (the container step, at build time) boots the VM up to antidote-resume and saves
# it in DIR: its memory and device state (state), what it wrote to its disk (disk.qcow2, over ANTIDOTE_DISK) and what
# a start checks before restoring it (snapshot.env).
#
# Environment (the lab image bakes defaults from its metadata; `docker run -e` overrides them):
#   ANTIDOTE_DISK               the image's disk, never written to          /disk/disk.qcow2
#   ANTIDOTE_KERNEL             the disk's kernel, for a direct boot        unset (baked by images that have one)
#   ANTIDOTE_KERNEL_CMDLINE     its command line (the disk's GRUB's)        unset (baked with the kernel)
#   ANTIDOTE_BOOT               auto (snapshot when it fits, else direct when there is a kernel, else firmware),
#                               snapshot (restore the image's snapshot), direct (microvm, a cold boot) or firmware
#                               (pc, GRUB)                                   auto
#   ANTIDOTE_SNAPSHOT           the image's snapshot (made by --snapshot)   /disk/snapshot
#   ANTIDOTE_NICS               VM NICs; NIC i >= 1 is stitched to eth<i>   1
#   CLAB_INTFS                  containerlab's number of data links (eth1..ethN): the VM gets N+1 NICs whatever
#                               ANTIDOTE_NICS says, and the boot waits for the links  unset
#   ANTIDOTE_PORTS              forwarded ports, "tcp:22 tcp:830 udp:161"   tcp:22
#   ANTIDOTE_MANAGEMENT_NET     QEMU's user network on NIC 0 (eth0: DHCP, the forwarded ports); lessons must not
#                               use it on their data interfaces           100.127.255.0/24
#   ANTIDOTE_MEMORY_MIB         VM memory                                   512
#   ANTIDOTE_CPUS               VM CPUs                                     1
#   ANTIDOTE_ACCEL              auto (KVM if a probe passes), kvm or tcg    auto
#   ANTIDOTE_INTERFACE_TIMEOUT  seconds to wait for eth1..ethN before boot  0, 120 with CLAB_INTFS (late ones are
#                                                                           plugged in when they appear)
#   ANTIDOTE_CONSOLE_PORT       TCP port of the serial console (telnet)    5000
#   ANTIDOTE_SHUTDOWN_TIMEOUT   seconds the guest gets to power down        7
#   ANTIDOTE_LESSON_DIR         directory exported to the VM (9p tags antidote and hostshare)  /antidote
#   ANTIDOTE_LESSON_HOST        hosts.NAME section of lesson.json to apply  the container's host name
#   ANTIDOTE_QMP_PORT           QEMU's control port, on 127.0.0.1 only      4444
#   ANTIDOTE_QEMU_UID           user QEMU runs as                           65534 (nobody)
set -euo pipefail

mode=start
if [ "${1:-}" = --snapshot ]; then
  mode=snapshot
  snapshot_out=${2:-}
elif [ $# -gt 0 ]; then
  echo "antidote-launch: error: unknown argument '$1' (the only one is --snapshot DIR)" >&2
  exit 1
fi

log() { echo "antidote-launch: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

disk=${ANTIDOTE_DISK:-/disk/disk.qcow2}
kernel=${ANTIDOTE_KERNEL:-}
kernel_cmdline=${ANTIDOTE_KERNEL_CMDLINE:-}
boot=${ANTIDOTE_BOOT:-auto}
nics=${ANTIDOTE_NICS:-1}
ports=${ANTIDOTE_PORTS:-tcp:22}
# Not QEMU's default, 10.0.2.0/24: lessons number their links 10.0.x.0/24, and a data interface in the management
# subnet takes the replies to forwarded connections away from eth0 (SSH never answered on a 4-router chain whose
# r2 — r3 link was 10.0.2.0/24). The top /24 of the shared address space (RFC 6598) is no lesson's.
management_net=${ANTIDOTE_MANAGEMENT_NET:-100.127.255.0/24}
memory=${ANTIDOTE_MEMORY_MIB:-512}
cpus=${ANTIDOTE_CPUS:-1}
accel=${ANTIDOTE_ACCEL:-auto}
interface_timeout=${ANTIDOTE_INTERFACE_TIMEOUT:-0}
# Docker's default stop timeout is 10 s: the guest's 7, QEMU's quit and the script's exit fit in it.
shutdown_timeout=${ANTIDOTE_SHUTDOWN_TIMEOUT:-7}
lesson_dir=${ANTIDOTE_LESSON_DIR:-/antidote}
lesson_host=${ANTIDOTE_LESSON_HOST:-${HOSTNAME:-}}
qmp_port=${ANTIDOTE_QMP_PORT:-4444}
console_port=${ANTIDOTE_CONSOLE_PORT:-5000}
qemu_uid=${ANTIDOTE_QEMU_UID:-65534}
snapshot_dir=${ANTIDOTE_SNAPSHOT:-/disk/snapshot}
run=/run/antidote
# microvm has eight virtio-mmio slots: the disk, the NICs and the two 9p shares must fit (the RNG takes a ninth's
# place only when one is free). A lab VM with more NICs boots by firmware, on PCI.
microvm_slots=8
# A snapshot's VM has as many NICs as fit: a start with fewer leaves the others without carrier, like a router's
# unused ports.
snapshot_nics=$((microvm_slots - 3))

# containerlab creates a node's links (eth1, eth2, ...) after the container starts and passes their number in
# CLAB_INTFS: the VM gets one NIC per link, and the boot waits for them (vrnetlab's convention), so that the guest
# starts with every cable in.
if [ -n "${CLAB_INTFS:-}" ]; then
  [[ $CLAB_INTFS =~ ^[0-9]{1,3}$ ]] || die "CLAB_INTFS must be a whole number, got '$CLAB_INTFS'"
  ((10#$CLAB_INTFS <= 15)) || die "CLAB_INTFS is $CLAB_INTFS: a VM has at most 15 data NICs (16 in all)"
  nics=$((10#$CLAB_INTFS + 1))
  interface_timeout=${ANTIDOTE_INTERFACE_TIMEOUT:-120}
fi

for var in nics memory cpus interface_timeout shutdown_timeout qmp_port console_port qemu_uid; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "$var must be a whole number, got '${!var}'"
done
((nics >= 1 && nics <= 16)) || die "ANTIDOTE_NICS must be 1..16, got $nics"
[ "$console_port" != "$qmp_port" ] || die "ANTIDOTE_CONSOLE_PORT and ANTIDOTE_QMP_PORT are both $qmp_port"
[[ $accel =~ ^(auto|kvm|tcg)$ ]] || die "ANTIDOTE_ACCEL must be auto, kvm or tcg, got '$accel'"
[[ $management_net =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/(8|9|1[0-9]|2[0-4])$ ]] ||
  die "ANTIDOTE_MANAGEMENT_NET must be an IPv4 subnet from /8 to /24 (a.b.c.d/n), got '$management_net'"
[ -r "$disk" ] || die "no disk at $disk"
[[ $boot =~ ^(auto|snapshot|direct|firmware)$ ]] ||
  die "ANTIDOTE_BOOT must be auto, snapshot, direct or firmware, got '$boot'"

# Everything of a previous start (overlay, health marker) goes: a restarted container boots a pristine VM.
rm -rf "$run"
mkdir -p "$run"

# --- Accelerator: KVM only when it is there and a probe VM runs on it ------------------------------------------------
# /dev/kvm can exist and still hang or crash guests (nested virtualization). The probe is SeaBIOS with a boot-menu
# timer and no disk: it prints "No bootable device" on its debug port and exits (-no-reboot) in about a second.
kvm_works() {
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  timeout 10 qemu-system-x86_64 -nodefaults -accel kvm -cpu host -m 32 -display none -monitor none -no-reboot \
    -boot menu=on,splash-time=500,reboot-timeout=0 \
    -chardev "file,id=probe,path=$run/kvm-probe.log" -device isa-debugcon,iobase=0x402,chardev=probe \
    >/dev/null 2>&1 && grep -qa "No bootable device" "$run/kvm-probe.log"
}
# A snapshot is TCG's: its CPU state is QEMU's "max" model, which KVM's "host" is not.
if [ "$mode" = snapshot ]; then accel=tcg; fi
if [ "$accel" = auto ]; then
  if kvm_works; then accel=kvm; else accel=tcg; fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel "tcg,thread=multi" -cpu max) ;;
esac
# The host's TSC rate: under TCG the guest's TSC is the host's, and a microvm guest has no clock to measure it against.
host_tsc_khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)

# --- Boot path: snapshot, direct (microvm) when the image holds its disk's kernel, else firmware ----------------------
requested_boot=$boot
if [ "$mode" = snapshot ]; then
  [ -n "$snapshot_out" ] || die "--snapshot needs the directory to write the snapshot to"
  boot=direct nics=1 interface_timeout=0 ports="" lesson_dir=$run/no-lesson lesson_host=""
fi
if [ "$boot" != firmware ]; then
  why_not=""
  if [ -z "$kernel" ] || [ -z "$kernel_cmdline" ]; then
    why_not="the image has no kernel of its own (ANTIDOTE_KERNEL, ANTIDOTE_KERNEL_CMDLINE)"
  elif [ ! -r "$kernel" ]; then
    why_not="no kernel at $kernel"
  elif ((nics + 3 > microvm_slots)); then
    why_not="$nics NICs, the disk and 2 shares need $((nics + 3)) virtio-mmio slots, microvm has $microvm_slots"
  fi
  if [ -z "$why_not" ]; then
    boot=direct
  elif [ "$boot" != auto ]; then
    die "ANTIDOTE_BOOT=$boot: $why_not"
  else
    boot=firmware
    if [ -n "$kernel" ]; then log "booting by firmware: $why_not"; fi
  fi
fi

# Whether this start can restore the image's snapshot: the snapshot's VM must be the one this start would boot.
# snapshot.env (written by --snapshot, below) sets these.
snapshot_memory="" snapshot_cpus="" snapshot_disk="" snapshot_kernel="" snapshot_kernel_cmdline=""
snapshot_append="" snapshot_tsc_khz=0 snapshot_qemu=""
snapshot_mismatch() {
  if [ ! -r "$snapshot_dir/snapshot.env" ]; then
    echo "the image has no snapshot ($snapshot_dir/snapshot.env)"
    return
  fi
  local tsc_drift=$((${host_tsc_khz:-0} - snapshot_tsc_khz))
  if [ "$accel" != tcg ]; then
    echo "the accelerator is $accel, the snapshot's is tcg"
  elif ((nics > snapshot_nics)); then
    echo "$nics NICs, the snapshot's VM has $snapshot_nics"
  elif [ "$memory" != "$snapshot_memory" ] || [ "$cpus" != "$snapshot_cpus" ]; then
    echo "$memory MiB and $cpus CPU(s), the snapshot's VM has $snapshot_memory MiB and $snapshot_cpus"
  elif [ "$disk" != "$snapshot_disk" ] || [ "$kernel" != "$snapshot_kernel" ] ||
    [ "$kernel_cmdline" != "$snapshot_kernel_cmdline" ]; then
    echo "the disk, kernel or command line differ from the snapshot's ($snapshot_disk, $snapshot_kernel)"
  elif ((${tsc_drift#-} * 100 > snapshot_tsc_khz)); then
    echo "this host's TSC runs at ${host_tsc_khz} kHz, the snapshot's at ${snapshot_tsc_khz} kHz (its clock would drift)"
  elif [ "$(qemu-system-x86_64 --version | head -n 1)" != "$snapshot_qemu" ]; then
    echo "QEMU is not the snapshot's ($snapshot_qemu)"
  fi
}
if [ "$mode" = start ] && [ "$boot" = direct ] && [[ $requested_boot =~ ^(auto|snapshot)$ ]]; then
  # shellcheck source=/dev/null # written by --snapshot, below
  if [ -r "$snapshot_dir/snapshot.env" ]; then . "$snapshot_dir/snapshot.env"; fi
  why_not=$(snapshot_mismatch)
  if [ -z "$why_not" ]; then
    boot=snapshot
  elif [ "$requested_boot" = snapshot ]; then
    die "ANTIDOTE_BOOT=snapshot: $why_not"
  elif [ -e "$snapshot_dir/snapshot.env" ]; then
    log "booting without the snapshot: $why_not"
  fi
fi
# The VM's NICs: the snapshot's VM has its own number of them (those past this start's are absent).
vm_nics=$nics
if [ "$boot" = snapshot ] || [ "$mode" = snapshot ]; then vm_nics=$snapshot_nics; fi
# virtio devices: on PCI (pc) or on virtio-mmio (microvm), the same device otherwise.
if [ "$boot" = firmware ]; then bus=pci; else bus=device; fi

# --- NIC 0: user-mode networking, declared ports forwarded from 127.0.0.1 (and relayed, below) ----------------------
forwards=""
relays=()
for spec in $ports; do
  [[ $spec =~ ^(tcp|udp):([0-9]+)$ ]] || die "ANTIDOTE_PORTS: '$spec' is not proto:port"
  [ "${BASH_REMATCH[2]}" != "$qmp_port" ] || die "port $qmp_port is forwarded; set ANTIDOTE_QMP_PORT to another"
  [ "$spec" != "tcp:$console_port" ] || die "port $console_port is forwarded; set ANTIDOTE_CONSOLE_PORT to another"
  forwards+=",hostfwd=${BASH_REMATCH[1]}:127.0.0.1:${BASH_REMATCH[2]}-:${BASH_REMATCH[2]}"
  relays+=("$spec")
done

# QEMU's user network shows the guest a loopback client as coming from its host (.2 of the management net); a client from anywhere
# else (Docker's published ports, the lab's other containers) keeps its own address, and restrict=on drops the
# guest's replies to it. So QEMU forwards from 127.0.0.1 only, and socat relays each port from the container's other
# addresses (the stitched data interfaces have none by then).
relay_ports() {
  local address relay
  ((${#relays[@]} > 0)) || return 0
  for address in $(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1); do
    for relay in "${relays[@]}"; do
      case $relay in
        tcp:*) socat "TCP4-LISTEN:${relay#tcp:},bind=$address,fork,reuseaddr" "TCP4:127.0.0.1:${relay#tcp:}" & ;;
        udp:*) socat "UDP4-RECVFROM:${relay#udp:},bind=$address,fork" "UDP4-SENDTO:127.0.0.1:${relay#udp:}" & ;;
      esac
    done
    log "ports ${relays[*]} relayed from $address"
  done
}

# MACs: 52:54:00 (QEMU's prefix), two bytes of this container's eth0 MAC so that VMs of one image wired to each other
# differ, then the NIC index. The guest sees NICs in this order: on pc, PCI slots 0x10 + index, as in the boot test; on
# microvm, the order of the -device options (QEMU gives them virtio-mmio slots, and the guest probes them, in order).
mac_base=52:54:00:a1:00
if [ -r /sys/class/net/eth0/address ]; then
  mac_base=52:54:00:$(cut -d: -f5,6 /sys/class/net/eth0/address)
fi
nic_device() {
  if [ "$bus" = pci ]; then
    printf 'virtio-net-pci,netdev=net%d,mac=%s:%02x,addr=0x%x,romfile=' "$1" "$mac_base" "$1" $((0x10 + $1))
  else
    printf 'virtio-net-device,netdev=net%d,mac=%s:%02x' "$1" "$mac_base" "$1"
  fi
}

# restrict=on: the VM reaches nothing beyond the container (the lab rule); the forwards still work.
qemu_args=(-netdev "user,id=net0,restrict=on,net=${management_net}${forwards}" -device "$(nic_device 0)")

# --- NICs 1..N-1: a tap per container interface, joined with tc mirred ----------------------------------------------
# A Linux bridge would swallow link-local frames (LLDP, LACP, STP use 01:80:c2:00:00:0x): tc's ingress redirect
# passes every frame unchanged, in both directions. matchall is the plain way; u32 "match anything" where the host
# kernel lacks cls_matchall.
mirror() {
  local from=$1 to=$2
  tc qdisc add dev "$from" handle ffff: ingress
  tc filter add dev "$from" parent ffff: protocol all matchall action mirred egress redirect dev "$to" 2>/dev/null ||
    tc filter add dev "$from" parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev "$to"
}

stitch() {
  local i=$1 mtu
  mtu=$(cat "/sys/class/net/eth$i/mtu")
  # The container itself stays off the wire: no addresses (Docker gives a network's interfaces one), no IPv6
  # link-local address and so no neighbour discovery of its own.
  ip addr flush dev "eth$i"
  ip link set "eth$i" addrgenmode none promisc on up
  ip link set "tap$i" addrgenmode none mtu "$mtu" up
  mirror "eth$i" "tap$i"
  mirror "tap$i" "eth$i"
  log "eth$i (mtu $mtu) stitched to VM NIC $i"
}

missing=()
if [ "$mode" = start ] && ((nics > 1)); then
  # QEMU opens taps through /dev/net/tun, which Docker allows but does not create; `--device /dev/net/tun` creates it
  # with the host's mode, 0600, which QEMU (unprivileged) cannot open. The node is the container's own: chmod is local.
  if [ ! -e /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200
  else
    chmod 0666 /dev/net/tun
  fi
  if ((interface_timeout > 0)); then
    log "waiting up to ${interface_timeout}s for eth1..eth$((nics - 1))${CLAB_INTFS:+ (CLAB_INTFS=$CLAB_INTFS)}"
  fi
  deadline=$((SECONDS + interface_timeout))
  for ((i = 1; i < nics; i++)); do
    ip tuntap add dev "tap$i" mode tap user "$qemu_uid"
    qemu_args+=(-netdev "tap,id=net$i,ifname=tap$i,script=no,downscript=no" -device "$(nic_device "$i")")
    while [ ! -e "/sys/class/net/eth$i" ] && ((SECONDS < deadline)); do sleep 0.5; done
    if [ -e "/sys/class/net/eth$i" ]; then stitch "$i"; else missing+=("$i"); fi
  done
  if ((interface_timeout > 0 && ${#missing[@]} > 0)); then
    log "${missing[*]/#/eth} not there after ${interface_timeout}s: booting without, plugged in when they appear"
  fi
fi
# NICs of the VM past this start's (a snapshot's VM has its own number of them, and --snapshot needs no tap): wired to
# nothing, their link down for good.
absent=()
for ((i = nics; i < vm_nics; i++)); do
  qemu_args+=(-netdev "user,id=net$i,restrict=on" -device "$(nic_device "$i")")
  absent+=("$i")
done

# --- Lesson files: virtio-9p, read-only, under two tags ------------------------------------------------------------
# "antidote" is what our images mount (antidote-configure.service); "hostshare" is what NRE Labs' lesson content and
# the VM images built for it mount, so those work unchanged. One device per tag: a guest mounts either, or both.
mkdir -p "$lesson_dir"
for tag in antidote hostshare; do
  qemu_args+=(
    -fsdev "local,id=lesson-$tag,path=$lesson_dir,security_model=none,readonly=on"
    -device "virtio-9p-$bus,fsdev=lesson-$tag,mount_tag=$tag"
  )
done
# The guest's antidote-configure.service mounts it at boot and applies lesson.json, its hosts.<name> section for the
# name in the SMBIOS serial (docs/lessons.md); its report is on the console, that is in this container's log.
if [[ $lesson_host =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]; then
  qemu_args+=(-smbios "type=1,serial=antidote-host:$lesson_host")
elif [ -n "$lesson_host" ]; then
  log "'$lesson_host' cannot name a lesson host: no hosts section applies"
fi
if [ -e "$lesson_dir/lesson.json" ]; then log "lesson configuration: $lesson_dir/lesson.json (host ${lesson_host:-none})"; fi
# microvm has no SMBIOS (qboot builds none), so there the lesson host travels as the guest's host name, which
# antidote-configure falls back to: on the kernel command line of a cold boot, in the resume line of a snapshot's.
guest_hostname=-
if [ -e "$lesson_dir/lesson.json" ] && [[ $lesson_host =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$ ]]; then
  guest_hostname=$lesson_host
fi

# --- Disk: a fresh overlay; the image's disk is its read-only backing file -------------------------------------------
# A snapshot's VM goes on from the disk as the snapshot left it: its overlay is the backing file, over the image's disk.
overlay=$run/overlay.qcow2
backing=$disk
if [ "$mode" = snapshot ]; then
  mkdir -p "$snapshot_out"
  rm -f "$snapshot_out"/{state,disk.qcow2,snapshot.env}
  chown "$qemu_uid" "$snapshot_out"
  overlay=$snapshot_out/disk.qcow2
elif [ "$boot" = snapshot ]; then
  backing=$snapshot_dir/disk.qcow2
fi
qemu-img create -q -f qcow2 -b "$backing" -F qcow2 "$overlay"
chown "$qemu_uid" "$overlay"
drive="file=$overlay,format=qcow2,cache=unsafe,discard=unmap"

# --- Machine ---------------------------------------------------------------------------------------------------------
if [ "$boot" != firmware ]; then
  # microvm: no PCI, no option ROMs, qboot straight into the kernel; ACPI (on by default) describes the virtio-mmio
  # devices and gives the guest a power button (system_powerdown). Under TCG the guest has no clock to measure its
  # TSC against (microvm has no HPET, no PM timer, no port 0x61 for the PIT) and stalls: its TSC is the host's, whose
  # rate the host's /proc/cpuinfo gives. The PIT and PIC stay for TCG's timer interrupts; KVM has kvmclock.
  append=$kernel_cmdline
  if [ "$guest_hostname" != - ]; then append+=" systemd.hostname=$guest_hostname"; fi
  # tsc=reliable: the clocksource watchdog compares the TSC with the PIT's ticks, which a loaded host delays; it then
  # drops the TSC for jiffies and the guest crawls (sshd never started, seen under load 15 on 2 cores).
  if [ "$accel" = tcg ] && [ -n "$host_tsc_khz" ]; then append+=" tsc_early_khz=$host_tsc_khz tsc=reliable"; fi
  # norandmaps: TCG finds the code it has translated by virtual address, so with address-space randomization every
  # process translates ld.so, libc and its binary anew; at fixed addresses processes share those translations and an
  # exec costs a third to a fifth (docs/container.md, "Address-space randomization under TCG").
  if [ "$accel" = tcg ]; then append+=" norandmaps"; fi
  # The snapshot's boot stops at antidote-resume; a restored VM has the snapshot's command line.
  if [ "$mode" = snapshot ]; then append+=" antidote.snapshot=1"; fi
  if [ "$boot" = snapshot ]; then append=$snapshot_append; fi
  machine_args=(-machine "microvm,x-option-roms=off,rtc=on" -kernel "$kernel" -append "$append")
  disk_args=(-drive "$drive,if=none,id=disk" -device "virtio-blk-device,drive=disk")
  # Slots left after the NICs and shares: the RNG where there is one.
  if ((vm_nics + 4 <= microvm_slots)); then disk_args+=(-device virtio-rng-device); fi
else
  machine_args=(-machine pc)
  disk_args=(-drive "$drive,if=virtio" -device virtio-rng-pci)
fi

# --- Serial console: a TCP port (vrnetlab's `telnet <node> 5000`) and the container log -----------------------------
# QEMU serves the port itself: one client at a time (the next is accepted when it leaves), and with wait=off the VM
# never waits for one. logfile= copies all the guest writes to the console, with or without a client, to a FIFO that
# this script copies to its stdout, the container log: QEMU, unprivileged, cannot reopen the log's pipe (root's, 0600).
# The copy in console.log is where the health check finds the lesson configuration's status line.
mkfifo -m 0600 "$run/console"
chown "$qemu_uid" "$run/console"
tee -a "$run/console.log" <"$run/console" &

# --- Control line of a snapshot's VM: its second serial port (ttyS1), FIFOs here -----------------------------------
# antidote-resume says "ready" there when the snapshot may be taken, and a restored VM gets its resume line there. Not
# the console: that is the user's, and what the guest is sent must not be echoed into the container log.
sandbox=on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
incoming=()
if [ "$mode" = snapshot ] || [ "$boot" = snapshot ]; then
  mkfifo -m 0600 "$run/control.in" "$run/control.out"
  chown "$qemu_uid" "$run/control.in" "$run/control.out"
  # Opened read-write, which never waits for the other end (QEMU may not get to open them).
  exec {control_in}<>"$run/control.in" {control_out}<>"$run/control.out"
  qemu_args+=(-chardev "pipe,id=control,path=$run/control" -device "isa-serial,chardev=control,index=1")
fi
# --snapshot saves the VM through a `cat` QEMU starts (QEMU 7.2 writes a migration to no file itself).
if [ "$mode" = snapshot ]; then sandbox=${sandbox/spawn=deny/spawn=allow}; fi
# A restored VM's state comes in on fd 3.
if [ "$boot" = snapshot ]; then incoming=(-incoming fd:3); fi

# --- QEMU, unprivileged ----------------------------------------------------------------------------------------------
groups=()
if [ "$accel" = kvm ]; then groups=(--groups "$(stat -c %g /dev/kvm)"); fi
if [ "$mode" = snapshot ]; then
  log "snapshot of $disk: booting it up to antidote-resume: ${memory} MiB, $cpus CPU(s), $vm_nics NIC(s)"
else
  log "booting $disk ($boot): $accel, ${memory} MiB, $cpus CPU(s), $nics NIC(s), ports: ${ports:-none}," \
    "console: tcp:$console_port"
fi
state=/dev/null
if [ "$boot" = snapshot ]; then state=$snapshot_dir/state; fi
setpriv --reuid="$qemu_uid" --regid="$qemu_uid" --clear-groups "${groups[@]}" --inh-caps=-all --no-new-privs -- \
  qemu-system-x86_64 \
  -name "${HOSTNAME:-antidote}" \
  -nodefaults \
  "${machine_args[@]}" \
  "${accel_args[@]}" \
  -m "$memory" \
  -smp "$cpus" \
  -display none \
  -monitor none \
  -chardev "socket,id=console,host=0.0.0.0,port=$console_port,server=on,wait=off,telnet=on,logfile=$run/console" \
  -serial chardev:console \
  -qmp "tcp:127.0.0.1:$qmp_port,server=on,wait=off" \
  -sandbox "$sandbox" \
  "${disk_args[@]}" \
  "${qemu_args[@]}" \
  "${incoming[@]}" \
  </dev/null 3<"$state" &
qemu_pid=$!

# One QMP command (name, then its arguments as a JSON object): greeting, capabilities negotiation, the command. Its
# reply (the first line that is not an event) is left in qmp_reply; the status is whether it returned. bash's
# /dev/tcp is enough for that.
qmp_reply=""
qmp() {
  local arguments=${2:-"{}"} line=""
  qmp_reply=""
  { exec 3<>"/dev/tcp/127.0.0.1/$qmp_port"; } 2>/dev/null || return 1
  read -r -t 2 _ <&3 || true
  printf '{"execute":"qmp_capabilities"}\n{"execute":"%s","arguments":%s}\n' "$1" "$arguments" >&3
  read -r -t 2 _ <&3 || true
  while read -r -t 5 line <&3 && [[ $line == *'"event"'* ]]; do :; done
  exec 3<&-
  qmp_reply=$line
  [[ $line == *'"return"'* ]]
}

# Brings VM NIC $1's link up (true) or down (false).
set_link() { qmp set_link "{\"name\":\"net$1\",\"up\":$2}"; }

# Waits up to $1 quarter-seconds for QMP to answer.
qmp_answers() {
  local j
  for ((j = 0; j < $1; j++)); do
    if qmp query-status; then return 0; fi
    sleep 0.25
  done
  return 1
}

# A line of the guest's control line (antidote-resume's) within SECONDS, in control_line; status: whether one came.
# A read that times out has taken what had come of a line: it is kept for the next read, which would otherwise see
# only the line's tail (a restored VM's "resumed", sent as a 3 s attempt ran out, was missed that way under load).
control_line="" control_partial=""
read_control_line() {
  local part=""
  control_line=""
  if ! read -r -t "$1" -u "$control_out" part; then
    control_partial+=$part
    return 1
  fi
  control_line=$control_partial$part
  control_line=${control_line%$'\r'}
  control_partial=""
}

if [ "$mode" = snapshot ]; then
  # shellcheck disable=SC2317 # called by the trap below
  abandon_snapshot() {
    kill -KILL "$qemu_pid" 2>/dev/null || true
    rm -f "$snapshot_out"/{state,disk.qcow2,snapshot.env}
    die "snapshot: $1 (the console's last lines are above)"
  }
  trap 'abandon_snapshot "stopped by a signal"' TERM INT
  # Links down from the start: the guest's NICs have no carrier in the snapshot, so that a restored VM takes its
  # addresses (DHCP on eth0) after its MACs are its own.
  qmp_answers 40 || true
  for ((i = 0; i < vm_nics; i++)); do
    set_link "$i" false || abandon_snapshot "QMP did not take NIC $i's link down"
  done
  deadline=$((SECONDS + ${ANTIDOTE_SNAPSHOT_TIMEOUT:-900}))
  until read_control_line 1 && [ "$control_line" = "antidote-resume: ready" ]; do
    kill -0 "$qemu_pid" 2>/dev/null || abandon_snapshot "QEMU exited before the guest reached antidote-resume"
    ((SECONDS < deadline)) || abandon_snapshot "the guest did not reach antidote-resume in ${ANTIDOTE_SNAPSHOT_TIMEOUT:-900}s"
  done
  booted=$SECONDS
  qmp stop || abandon_snapshot "QMP did not stop the VM: $qmp_reply"
  qmp migrate "{\"uri\":\"exec:cat >$snapshot_out/state\"}" || abandon_snapshot "the VM cannot be saved: $qmp_reply"
  until qmp query-migrate && [[ $qmp_reply == *'"status": "completed"'* ]]; do
    if [[ $qmp_reply == *'"status": "failed"'* ]]; then abandon_snapshot "saving the VM failed: $qmp_reply"; fi
    sleep 0.2
  done
  qmp quit || true
  wait "$qemu_pid" || true
  {
    printf 'snapshot_%s=%q\n' nics "$vm_nics" memory "$memory" cpus "$cpus" disk "$disk" kernel "$kernel" \
      kernel_cmdline "$kernel_cmdline" append "$append" tsc_khz "$host_tsc_khz"
    printf 'snapshot_qemu=%q\n' "$(qemu-system-x86_64 --version | head -n 1)"
  } >"$snapshot_out/snapshot.env"
  chown -R 0:0 "$snapshot_out"
  log "snapshot: the guest was ready after ${booted}s; state $(du -m "$snapshot_out/state" | cut -f1) MB," \
    "disk $(du -m "$snapshot_out/disk.qcow2" | cut -f1) MB, in $snapshot_out"
  exit 0
fi

relay_ports
# The health verdict, recorded when the VM's SSH answers (the HEALTHCHECK only reads it). The disks this project
# builds, the ones with a kernel of their own, run antidote-configure at boot, which prints its status line on the
# console before sshd starts; a vendor disk prints none.
if [ -n "$kernel" ]; then export ANTIDOTE_CONSOLE_STATUS=1; fi
antidote-health --watch &

# A restored VM waits in antidote-resume: it is sent this start's clock, host name, MACs and a random seed (never
# logged), and once it has answered, its links come up: the NICs of this start's interfaces, not the absent ones.
resume_vm() {
  local seed hostkey_dir hostkey hostkey_pub i attempt
  hex() { od -An -v -tx1 "$@" | tr -d ' \n'; }
  # Made while QEMU loads the state. The VM's SSH host key is made here in milliseconds rather than by ssh-keygen in
  # the guest (a second of a cold TCG vCPU, on the way to SSH); it goes to the guest on the control line, as the seed,
  # and is not kept here.
  seed=$(hex -N32 /dev/urandom)
  hostkey_dir=$(mktemp -d "$run/hostkey.XXXXXX")
  ssh-keygen -q -N "" -t ed25519 -C "root@${guest_hostname/#-/$(hostname)}" -f "$hostkey_dir/key" ||
    { rm -rf "$hostkey_dir"; log "could not make the VM's host key"; return 1; }
  hostkey=$(hex "$hostkey_dir/key") hostkey_pub=$(hex "$hostkey_dir/key.pub")
  rm -rf "$hostkey_dir"
  until qmp query-status && [[ $qmp_reply == *'"status": "paused"'* || $qmp_reply == *'"status": "running"'* ]]; do
    kill -0 "$qemu_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  qmp cont || { log "QMP did not resume the VM: $qmp_reply"; return 1; }
  for ((attempt = 1; ; attempt++)); do
    printf 'resume %s %s %s %s %s %s\n' "$(date +%s.%N)" "$guest_hostname" "$mac_base" "$seed" "$hostkey" \
      "$hostkey_pub" >&"$control_in"
    if read_control_line 3 && [ "$control_line" = "antidote-resume: resumed" ]; then break; fi
    if ((attempt == 10)); then
      log "the restored VM did not answer its resume line: its links stay down (the console above says why)"
      return 1
    fi
  done
  for ((i = 0; i < nics; i++)); do
    if [[ " ${missing[*]} " != *" $i "* ]]; then
      set_link "$i" true || log "could not bring VM NIC $i's link up"
    fi
  done
  log "VM restored from the snapshot${absent[*]:+ (NIC(s) ${absent[*]} absent: no carrier)}"
}

# A data interface that is not there yet (a plain `docker run`, or a platform that wires links after start, as
# containerlab does) does not hold the boot up: its VM NIC starts with its link down, and is stitched and brought up,
# so the guest sees a carrier change, when the interface appears.
plug_in_late_interfaces() {
  local i j
  ((${#missing[@]} > 0)) || return 0
  qmp_answers 20 || true
  for i in "${missing[@]}"; do set_link "$i" false || log "could not unplug VM NIC $i"; done
  log "VM NIC(s) ${missing[*]} unplugged until ${missing[*]/#/eth} appear(s)"
  while ((${#missing[@]} > 0)); do
    sleep 1
    for j in "${!missing[@]}"; do
      i=${missing[$j]}
      [ -e "/sys/class/net/eth$i" ] || continue
      if stitch "$i" && set_link "$i" true; then
        log "VM NIC $i plugged in"
      else
        log "could not stitch eth$i"
      fi
      unset "missing[$j]"
    done
  done
}
if [ "$boot" = snapshot ]; then
  { resume_vm && plug_in_late_interfaces; } &
else
  plug_in_late_interfaces &
fi

# shellcheck disable=SC2317 # called by the trap below
stop_vm() {
  trap - TERM INT
  log "stopping: asking the guest to power down (${shutdown_timeout}s)"
  qmp system_powerdown || log "QMP did not answer"
  local deadline=$((SECONDS + shutdown_timeout))
  while kill -0 "$qemu_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$qemu_pid" 2>/dev/null; then
    log "the guest did not power down in ${shutdown_timeout}s: quitting QEMU"
    qmp quit || kill -TERM "$qemu_pid" 2>/dev/null || true
    for ((i = 0; i < 5; i++)); do kill -0 "$qemu_pid" 2>/dev/null && sleep 0.2; done
    kill -KILL "$qemu_pid" 2>/dev/null || true
  fi
  wait "$qemu_pid" 2>/dev/null || true
  log "stopped"
  exit 0
}
trap stop_vm TERM INT

status=0
wait "$qemu_pid" || status=$?
log "QEMU exited with status $status"
exit "$status"
