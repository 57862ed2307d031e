#!/bin/bash
# The lab image's health, in two parts.
#
# `antidote-health --watch` runs once per start, in the background of the launcher, and records the verdict in
# /run/antidote/health the moment it has one. The guest applies the lesson configuration before it starts sshd and
# prints the result on the serial console ("antidote-configure status: <exit code> <summary>", docs/lessons.md),
# which the launcher copies to /run/antidote/console.log: when the VM's SSH banner answers (an open port proves
# nothing: QEMU accepts connections itself), that line is the verdict, and a failed configuration is unhealthy for
# good. An image without the line (an imported vendor disk) is logged into once with its password instead, since a
# banner alone is not yet a ready system. From then on the banner is checked every 30 s: the VM is not polled.
#
# `antidote-health` (the Docker HEALTHCHECK, every 2 s) only reads that verdict: it touches neither QEMU nor the
# VM, so the container turns healthy at its first check after SSH answers.
#
# Environment (baked from the image's metadata): ANTIDOTE_SSH_PORT (22), ANTIDOTE_SSH_USER, ANTIDOTE_SSH_PASSWORD.
set -euo pipefail

port=${ANTIDOTE_SSH_PORT:-22}
# The login is the image's (its metadata), baked by the container step: no default of its own here.
: "${ANTIDOTE_SSH_USER:?login user of the image, baked from its metadata}"
: "${ANTIDOTE_SSH_PASSWORD:?login password of the image, baked from its metadata}"
verdict=/run/antidote/health

# banner [SECONDS]: whether sshd's banner arrives within SECONDS (5); status 2 when the connection was held that long
# without one, 1 when it was refused or closed. QEMU accepts the connection itself and holds it while the guest does
# not answer (its eth0 not up yet): a short attempt, tried again, sees the banner sooner.
banner() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  if ! read -r -t "${1:-5}" line <&3; then
    exec 3<&-
    return 2
  fi
  exec 3<&-
  [[ $line == SSH-* ]] || return 1
}

# Writes "<status> <message>" atomically: the health check never reads half a verdict.
record() {
  printf '%s %s\n' "$1" "$2" >"$verdict.new"
  mv "$verdict.new" "$verdict"
}

# The last status line antidote-configure printed on the console (empty when there is none).
console_status() {
  grep -a -o 'antidote-configure status: [0-9][0-9]* [^[:cntrl:]]*' /run/antidote/console.log 2>/dev/null |
    tail -n 1 | sed 's/^antidote-configure status: //'
}

# What the login user sees of the lesson configuration, through a password login (images without the console line).
login_status() {
  SSHPASS=$ANTIDOTE_SSH_PASSWORD timeout 20 sshpass -e ssh \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    -o ConnectTimeout=10 -p "$port" "$ANTIDOTE_SSH_USER@127.0.0.1" \
    'cat /run/antidote/configure.status 2>/dev/null; true' </dev/null
}

watch() {
  local status="" how attempt=3 held
  if [ "${ANTIDOTE_CONSOLE_STATUS:-0}" = 1 ]; then
    # The guest prints its status line just before sshd starts: until then the VM is not polled. Then attempts of 3 s,
    # one at a time: QEMU holds a connection while the guest's eth0 has no address yet (a 5 s attempt saw the banner
    # seconds late), and sshd's banner takes over a second under TCG (a 1 s attempt never saw it). An attempt held to
    # its end doubles the next one's time, up to 24 s: sshd forks and re-executes itself for each connection, which
    # takes longer than 3 s on a loaded host (four VMs on two cores), and every attempt given up threw that work away
    # (the banner came 20 s after sshd started).
    until status=$(console_status) && [ -n "$status" ]; do sleep 0.25; done
    while :; do
      held=0
      banner "$attempt" || held=$?
      ((held != 0)) || break
      if ((held == 2 && attempt < 24)); then attempt=$((attempt * 2)); fi
      sleep 0.25
    done
  else
    until banner; do sleep 0.5; done
  fi
  if [ -n "$status" ]; then
    how="SSH answers"
  else
    how="logged in over SSH"
    until status=$(login_status); do
      record 1 "SSH answers but the login failed"
      sleep 1
    done
  fi
  case $status in
    "" | "0 "* | "4 "*) ;;
    *)
      record 1 "lesson configuration failed: $status (the container log has antidote-configure's report)"
      return 0
      ;;
  esac
  local ready="$how${status:+; lesson configuration: $status}"
  record 0 "$ready"
  while sleep 30; do
    if banner; then record 0 "$ready"; else record 1 "the VM's SSH server stopped answering"; fi
  done
}

if [ "${1:-}" = --watch ]; then
  watch
  exit 0
fi
if [ ! -e "$verdict" ]; then
  echo "SSH does not answer yet: the VM is booting"
  exit 1
fi
read -r status message <"$verdict"
echo "$message"
exit "$status"
