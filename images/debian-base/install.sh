#!/bin/sh
# Runs inside the image while it is built. The base adds only a login banner: packages and the user come from
# the pipeline, and everything an image adds on top belongs in that image's own install.sh.
set -eu
cat > /etc/motd <<'MOTD'

  antidote lab VM — Debian 12 (bookworm)
  Lesson files, when the lesson has any, are under /antidote.

MOTD
