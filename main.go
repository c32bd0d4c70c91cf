// Command porthole-desktop is Porthole's desktop app: a tray menu and a
// settings window for saved tunnel profiles. `go run .` starts it.
package main

import (
	"flag"
	"fmt"
	"os"

	"porthole/app"
	"porthole/inspect"
)

func main() {
	background := flag.Bool("background", false, "start in the tray without opening the settings window (used at login)")
	webAddr := flag.String("web-addr", inspect.DefaultAddr, `traffic inspector and agent API address ("false" turns them off)`)
	flag.Parse()
	if err := app.Run(*background, *webAddr); err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		os.Exit(1)
	}
}
