//go:build !windows

package autostart

import (
	"errors"
	"os"
)

// removeFile deletes a launcher file; a missing one is not an error.
func removeFile(path string, err error) error {
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// fileExists reports whether a launcher file is in place.
func fileExists(path string, err error) bool {
	if err != nil {
		return false
	}
	_, err = os.Stat(path)
	return err == nil
}
