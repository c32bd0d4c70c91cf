# Porthole. `make run` starts the desktop app; `make test` runs every check.
# Both install what they need on Debian/Ubuntu first.

.PHONY: run test bench build porthole package

run:
	scripts/run.sh

test:
	scripts/test.sh

bench:
	scripts/deps.sh bench
	go run ./bench -wan

porthole:
	CGO_ENABLED=0 go build -o bin/porthole ./cmd/porthole

build: porthole
	go build -o bin/porthole-desktop .

# Porthole.tar.xz: the desktop app (as porthole-desktop, beside the porthole
# command line), its menu entry and icon; `sudo make install` inside it installs.
package:
	scripts/deps.sh run
	go build -o bin/porthole-desktop .
	go run fyne.io/tools/cmd/fyne@v1.7.4 package -os linux --release --exe bin/porthole-desktop
