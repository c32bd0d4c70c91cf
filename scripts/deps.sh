#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Porthole needs to build, run and test.
# Usage: scripts/deps.sh run|test|bench
set -euo pipefail

build=(gcc pkg-config libgl1-mesa-dev xorg-dev)
run=(dbus-x11 gnome-keyring)
test=(xvfb xauth dbus-x11 dbus-daemon gnome-keyring imagemagick xdotool curl desktop-file-utils openbox wmctrl systemd jq nodejs npm chromium zbar-tools)
bench=(wrk iperf3 curl)

case "${1:-}" in
run) want=("${build[@]}" "${run[@]}") ;;
test) want=("${build[@]}" "${test[@]}") ;;
bench) want=("${bench[@]}") ;;
*) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

# A package whose command is already on PATH (from another source, such as
# Node.js from its own repository, which bundles npm) is not installed again.
declare -A provides=([nodejs]=node [npm]=npm [chromium]=chromium)
missing=()
for p in "${want[@]}"; do
	cmd=${provides[$p]:-}
	if [ -n "$cmd" ] && command -v "$cmd" >/dev/null; then
		continue
	fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
