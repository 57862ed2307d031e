#!/bin/sh
# The base configuration of a lab VM. Runs inside the image tree first thing on every build, also of images
# derived from another one, so every step is idempotent.
#
# environment: ANTIDOTE_HOSTNAME, ANTIDOTE_ROOT_LABEL
set -eu

hostname=$ANTIDOTE_HOSTNAME
label=$ANTIDOTE_ROOT_LABEL

echo "$hostname" >/etc/hostname
cat >/etc/hosts <<HOSTS
127.0.0.1	localhost
127.0.1.1	$hostname
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
HOSTS

# The disk step makes the ext4 root with this label. No fsck at boot (pass 0): a lab VM boots on a fresh overlay of a
# disk that was checked when it was built, ext4's journal covers a crash, and fsck of the root is on the path to SSH.
cat >/etc/fstab <<FSTAB
# <file system>	<mount point>	<type>	<options>	<dump>	<pass>
LABEL=$label	/	ext4	defaults,errors=remount-ro	0	0
FSTAB

ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime
echo Etc/UTC >/etc/timezone

# Network: the kernel's names (eth0, eth1, ... in PCI slot order, which is the order of QEMU's -device options)
# instead of udev's predictable names, whose spelling depends on the machine type (ens3 on pc, enp0s3 on q35).
# eth0 is the management NIC and gets DHCP; the others stay unconfigured for the lesson to set up.
mkdir -p /etc/systemd/network
ln -sf /dev/null /etc/systemd/network/99-default.link
cat >/etc/systemd/network/10-eth0.network <<NETWORK
[Match]
Name=eth0

[Network]
DHCP=ipv4
NETWORK
systemctl enable systemd-networkd.service

# A login on the serial console, whatever the kernel command line says.
systemctl enable serial-getty@ttyS0.service

# Nothing reaches out at runtime: lab VMs have no route to the internet.
for unit in apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done

# SSH: passwords accepted; host keys made on first boot, so no two VMs of an image share them.
mkdir -p /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/10-antidote.conf <<SSHD
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UseDNS no
SSHD
# One Ed25519 key, made before sshd starts. Each key type is a key generation on the way to SSH (ECDSA about a second
# under emulation, RSA 3072 ten to twenty seconds of a vCPU that the lesson's services need), and every client of the
# last ten years speaks Ed25519 (OpenSSH 6.5, PuTTY 0.68, paramiko 2.2, libssh2 1.9). An image that must serve RSA
# clients makes its key in its own unit (docs/rootfs.md).
cat >/etc/systemd/system/ssh-hostkeys.service <<UNIT
[Unit]
Description=Generate the SSH host key (Ed25519) on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -N "" -t ed25519 -f /etc/ssh/ssh_host_ed25519_key
RemainAfterExit=yes

[Install]
RequiredBy=ssh.service
UNIT
# sshd only loads the keys that exist (Debian's sshd_config names none), but says so for each missing one.
cat >/etc/ssh/sshd_config.d/20-antidote-hostkey.conf <<SSHD
HostKey /etc/ssh/ssh_host_ed25519_key
SSHD
systemctl enable ssh-hostkeys.service

# e2scrub checks LVM snapshots, which lab VMs do not have; at boot it only costs time.
systemctl disable e2scrub_reap.service e2scrub_all.timer 2>/dev/null || true

# Every unit on the way to SSH costs a second or more of the vCPU under emulation (TCG). What lab VMs do not need:
# - the kernel command line's ip= (systemd-network-generator): the network is systemd-networkd's files above;
# - a login on tty1: lab VMs have no display, the console is the serial port;
# - module loading: the project's kernel has no modules (CONFIG_MODULES is off), so the modprobe@ units systemd
#   starts for dm_mod, drm, fuse, loop… and systemd-modules-load only fork to fail; they still run on a kernel
#   that has modules;
# - a persistent journal: every start boots a fresh overlay of the disk, so nothing written to /var/log/journal
#   survives the VM; the journal stays in memory (journalctl works as usual), and systemd-journal-flush, which
#   moves it to disk at boot, is masked.
# - generators for what lab VMs do not have: encrypted, integrity or verity volumes, partitions found by GPT type,
#   hibernation, rc.local, update mode, the kernel command line's systemd.run= and getty settings (serial-getty@ttyS0
#   is enabled above). systemd runs every generator before it loads a unit, at every boot (1.5 s of a TCG boot went
#   to generators and unit loading). fstab's and SysV's stay, and so does the debug generator: systemd.mask= and
#   systemd.wants= on the kernel command line are how a VM that does not boot is debugged (the boot test uses them).
mkdir -p /etc/systemd/system-generators
for generator in cryptsetup getty gpt-auto hibernate-resume integritysetup rc-local run system-update veritysetup; do
  ln -sf /dev/null "/etc/systemd/system-generators/systemd-$generator-generator"
done
ln -sf /dev/null /etc/systemd/system/systemd-network-generator.service
ln -sf /dev/null /etc/systemd/system/systemd-journal-flush.service
systemctl disable getty@tty1.service 2>/dev/null || true
for unit in modprobe@.service systemd-modules-load.service kmod-static-nodes.service; do
  mkdir -p "/etc/systemd/system/$unit.d"
  cat >"/etc/systemd/system/$unit.d/10-antidote-modules.conf" <<UNIT
[Unit]
ConditionPathExists=/proc/modules
UNIT
done
# D-Bus and logind serve logins and the power button, not sshd: they start after it instead of beside the units
# on its way (2-3 s each under TCG). A login's PAM session waits for them; a power button pressed before
# they run goes unheard (the launcher then quits QEMU after its shutdown timeout).
# So does the console's login prompt: a lab VM is reached over SSH first, and its getty took the vCPU from the units
# on the way to it.
for unit in dbus.service systemd-logind.service serial-getty@ttyS0.service; do
  mkdir -p "/etc/systemd/system/$unit.d"
  cat >"/etc/systemd/system/$unit.d/10-antidote-after-ssh.conf" <<UNIT
[Unit]
After=ssh.service
UNIT
done
mkdir -p /etc/systemd/journald.conf.d
cat >/etc/systemd/journald.conf.d/10-antidote.conf <<JOURNALD
[Journal]
Storage=volatile
JOURNALD

# Stage 3: the lesson configuration tool and the unit that runs it at boot (docs/lessons.md).
install -D -m 0755 /run/antidote/stage3/antidote-configure /usr/local/bin/antidote-configure
install -D -m 0644 /run/antidote/stage3/antidote-configure.service /etc/systemd/system/antidote-configure.service
systemctl enable antidote-configure.service
# The snapshot point, and the resume of a VM restored from the snapshot (docs/container.md, "Snapshot start").
install -D -m 0755 /run/antidote/stage3/antidote-resume /usr/local/bin/antidote-resume
install -D -m 0644 /run/antidote/stage3/antidote-resume.service /etc/systemd/system/antidote-resume.service
systemctl enable antidote-resume.service
