//go:build !unix

package loadtest

// checkFileLimit has no limit to consult on this system.
func checkFileLimit(int) error { return nil }
