package main

import "io"

func runStart(args []string, stdout, stderr io.Writer) error {
	return usagef("not yet available")
}
