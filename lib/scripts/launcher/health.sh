#!/bin/bash
# Docker HEALTHCHECK of a lab image: healthy once the VM has accepted a password login over SSH (tried until it
# first succeeds, since an open port or even a banner is not a ready system), and from then on while its SSH server
# still sends a banner (cheap enough to run every few seconds under TCG).
#
# Environment (baked from the image's metadata): ANTIDOTE_SSH_PORT (22), ANTIDOTE_SSH_USER, ANTIDOTE_SSH_PASSWORD.
set -euo pipefail

port=${ANTIDOTE_SSH_PORT:-22}
logged_in=/run/antidote/ssh-login-ok

banner() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  read -r -t 5 line <&3 || return 1
  exec 3<&-
  [[ $line == SSH-* ]] || return 1
}

if [ ! -e "$logged_in" ]; then
  banner || { echo "no SSH banner on port $port yet"; exit 1; }
  SSHPASS=${ANTIDOTE_SSH_PASSWORD:-antidotepassword} timeout 20 sshpass -e ssh \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    -o ConnectTimeout=10 -p "$port" "${ANTIDOTE_SSH_USER:-antidote}@127.0.0.1" true </dev/null ||
    { echo "SSH answers but the login failed"; exit 1; }
  touch "$logged_in"
  echo "logged in over SSH"
  exit 0
fi
banner || { echo "the VM's SSH server stopped answering"; exit 1; }
