#!/usr/bin/env bash
# Runs every check and test. Desktop tests start their own Xvfb display,
# D-Bus session, keyring and tray watcher; PORTHOLE_DESKTOP_TESTS=require
# makes them fail, rather than skip, when a piece is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# Each OS's autostart and tray files compile, and the command line
# cross-builds without cgo.
for os in windows darwin; do
	GOOS=$os go vet ./autostart ./tray
	GOOS=$os CGO_ENABLED=0 go build -o /dev/null ./cmd/porthole
done
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
export PORTHOLE_DESKTOP_TESTS=require
go test -race -count=1 -timeout 30m ./...
# Each fuzz target of the wire decoders and the relay's routing reads runs
# for a few seconds on top of its seed corpus.
for target in wire:FuzzReadMessage wire:FuzzReadHello wire:FuzzReadStreamHeader \
	relay:FuzzRequestHead internal/netutil:FuzzPeekClientHello; do
	go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 5s "./${target%%:*}"
done
