// Command porthole-desktop is Porthole's desktop app: a tray menu and a
// settings window for saved tunnel profiles. `go run .` starts it.
package main

import (
	"flag"
	"fmt"
	"os"

	"porthole/app"
)

func main() {
	background := flag.Bool("background", false, "start in the tray without opening the settings window (used at login)")
	flag.Parse()
	if err := app.Run(*background); err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		os.Exit(1)
	}
}
