#!/bin/bash
# Docker HEALTHCHECK of a lab image: healthy once the VM has accepted a password login over SSH (tried until it
# first succeeds, since an open port or even a banner is not a ready system), and from then on while its SSH server
# still sends a banner (cheap enough to run every few seconds under TCG). Unhealthy for good when the lesson
# configuration failed: the guest applies it before starting sshd and leaves its result in
# /run/antidote/configure.status ("<exit code> <summary>", docs/lessons.md), read at that first login.
#
# Environment (baked from the image's metadata): ANTIDOTE_SSH_PORT (22), ANTIDOTE_SSH_USER, ANTIDOTE_SSH_PASSWORD.
set -euo pipefail

port=${ANTIDOTE_SSH_PORT:-22}
logged_in=/run/antidote/ssh-login-ok
configure_failed=/run/antidote/configure-failed

banner() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  read -r -t 5 line <&3 || return 1
  exec 3<&-
  [[ $line == SSH-* ]] || return 1
}

if [ -e "$configure_failed" ]; then
  cat "$configure_failed"
  exit 1
fi
if [ ! -e "$logged_in" ]; then
  banner || { echo "no SSH banner on port $port yet"; exit 1; }
  # An image without the stage-3 unit (an imported vendor disk) has no status: nothing to report.
  status=$(SSHPASS=${ANTIDOTE_SSH_PASSWORD:-antidotepassword} timeout 20 sshpass -e ssh \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    -o ConnectTimeout=10 -p "$port" "${ANTIDOTE_SSH_USER:-antidote}@127.0.0.1" \
    'cat /run/antidote/configure.status 2>/dev/null; true' </dev/null) ||
    { echo "SSH answers but the login failed"; exit 1; }
  case $status in
    "" | "0 "* | "4 "*) ;;
    *)
      echo "lesson configuration failed: $status (the container log has antidote-configure's report)" \
        >"$configure_failed"
      cat "$configure_failed"
      exit 1
      ;;
  esac
  touch "$logged_in"
  echo "logged in over SSH${status:+; lesson configuration: $status}"
  exit 0
fi
banner || { echo "the VM's SSH server stopped answering"; exit 1; }
