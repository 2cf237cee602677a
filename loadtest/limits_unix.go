//go:build unix

package loadtest

import (
	"fmt"
	"syscall"
)

// fdHeadroom is kept free for the process's own files, the preflight dial and plots.
const fdHeadroom = 64

// checkFileLimit reports when conns connections would not fit under the open-file
// limit: past it, connections fail with "too many open files", which would show up as
// errors of the server under test. The Go runtime has already raised the soft limit to
// the hard one at start-up, so what is left is the real ceiling.
func checkFileLimit(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // no limit to read: the run itself will tell
	}
	if uint64(conns)+fdHeadroom > lim.Cur {
		return fmt.Errorf("%d connections need more files than the open-file limit of %d allows"+
			" (raise it with ulimit -n)", conns, lim.Cur)
	}
	return nil
}
