#!/usr/bin/env bash
# Installs what the desktop app needs, then runs it (the tray app with its
# built-in local relay). Arguments go to the app, e.g. --background.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
exec go run . "$@"
