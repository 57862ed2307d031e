#!/bin/sh
# The login user: its supplementary groups (created when missing), its password and passwordless sudo. Runs inside
# the image tree after package installation, so groups that packages create (frrvty, wireshark) are theirs.
#
# environment: ANTIDOTE_USER, ANTIDOTE_GROUPS (space-separated)
# /run/antidote/user.shadow: "user:crypt-hash" for chpasswd -e, kept out of the environment and the build log
set -eu

user=$ANTIDOTE_USER
groups=$ANTIDOTE_GROUPS

for group in $groups; do
  getent group "$group" >/dev/null || groupadd "$group"
done
list=$(echo "$groups" | tr ' ' ',')
if id -u "$user" >/dev/null 2>&1; then
  usermod --shell /bin/bash ${list:+--append --groups "$list"} "$user"
else
  useradd --create-home --shell /bin/bash ${list:+--groups "$list"} "$user"
fi
chpasswd --encrypted </run/antidote/user.shadow
sudoers="/etc/sudoers.d/antidote-$user"
echo "$user ALL=(ALL:ALL) NOPASSWD: ALL" >"$sudoers"
chmod 0440 "$sudoers"
visudo --check --quiet --file="$sudoers"
