# Porthole. `make run` starts the desktop app; `make test` runs every check.
# Both install what they need on Debian/Ubuntu first.

.PHONY: run test bench build porthole package

run:
	scripts/deps.sh run
	go run .

test:
	scripts/test.sh

bench:
	scripts/deps.sh bench
	go run ./bench

porthole:
	CGO_ENABLED=0 go build -o bin/porthole ./cmd/porthole

build: porthole
	go build -o bin/porthole-desktop .

package:
	scripts/deps.sh run
	go run fyne.io/tools/cmd/fyne@v1.7.4 package -os linux --release
