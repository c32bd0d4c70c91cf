#!/usr/bin/env bash
# Installs the desktop app for the current user from a build: the binary in
# ~/.local/bin, the menu entry and the icon under ~/.local/share.
# Usage: packaging/install.sh [path/to/porthole-desktop]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../bin/porthole-desktop}"
prefix="${PREFIX:-$HOME/.local}"
install -Dm755 "$bin" "$prefix/bin/porthole-desktop"
install -Dm644 "$here/porthole.desktop" "$prefix/share/applications/dev.porthole.app.desktop"
install -Dm644 "$here/icons/dev.porthole.app.png" "$prefix/share/icons/hicolor/512x512/apps/dev.porthole.app.png"
echo "installed $prefix/bin/porthole-desktop; Porthole is in your applications menu"
