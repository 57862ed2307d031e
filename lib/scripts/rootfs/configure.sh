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
# Ed25519 and ECDSA before sshd starts (milliseconds); RSA, which takes seconds under emulation (TCG), after it: a
# VM answers SSH without waiting for the RSA key. No reload (it would reset connections being opened): each
# connection's sshd loads the host keys anew, so the RSA key is offered as soon as it exists.
cat >/etc/systemd/system/ssh-hostkeys.service <<UNIT
[Unit]
Description=Generate SSH host keys (Ed25519, ECDSA) on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -N "" -t ed25519 -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -N "" -t ecdsa -f /etc/ssh/ssh_host_ecdsa_key
RemainAfterExit=yes

[Install]
RequiredBy=ssh.service
UNIT
cat >/etc/systemd/system/ssh-hostkey-rsa.service <<UNIT
[Unit]
Description=Generate the SSH RSA host key on first boot, after sshd has started
After=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_rsa_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -N "" -t rsa -b 3072 -f /etc/ssh/ssh_host_rsa_key
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-hostkeys.service ssh-hostkey-rsa.service

# e2scrub checks LVM snapshots, which lab VMs do not have; at boot it only costs time.
systemctl disable e2scrub_reap.service e2scrub_all.timer 2>/dev/null || true

# Stage 3: the lesson configuration tool and the unit that runs it at boot (docs/lessons.md).
install -D -m 0755 /run/antidote/stage3/antidote-configure /usr/local/bin/antidote-configure
install -D -m 0644 /run/antidote/stage3/antidote-configure.service /etc/systemd/system/antidote-configure.service
systemctl enable antidote-configure.service
