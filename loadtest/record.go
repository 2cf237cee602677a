package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrorKind classifies why a request failed. The zero value means it did not fail.
type ErrorKind uint8

// The error kinds a record can carry.
const (
	ErrNone     ErrorKind = iota // the request got a whole response (any status; see Record.Failed)
	ErrTimeout                   // the per-request timeout passed first
	ErrRefused                   // the server refused the connection
	ErrReset                     // the server reset or closed the connection mid-exchange
	ErrOther                     // anything else: DNS, too many open files, bad response …
	ErrCanceled                  // the run was stopped (Ctrl-C) while the request was in flight
)

// errorKindNames are the stable names used in CSV, JSON and text output.
var errorKindNames = [...]string{
	ErrNone:     "",
	ErrTimeout:  "timeout",
	ErrRefused:  "refused",
	ErrReset:    "reset",
	ErrOther:    "other",
	ErrCanceled: "canceled",
}

// String returns the kind's stable name, or "" for ErrNone.
func (k ErrorKind) String() string {
	if int(k) < len(errorKindNames) {
		return errorKindNames[k]
	}
	return "unknown"
}

// Record is what one request did. Offsets are measured from the start of the run.
//
// Scheduled is when the request was due: the release instant in burst mode, its slot on
// the timetable in rate mode, and the moment a worker took it in concurrency mode (a
// closed loop has no timetable). Latency counts from Scheduled, so in rate mode a request
// that waited behind a stalled generator or server is charged for the wait.
type Record struct {
	Index     int           // order in which requests were scheduled, from 0
	Scheduled time.Duration // when the request was due
	Start     time.Duration // when it was handed to the transport
	End       time.Duration // when its body was read to the end, or it failed
	Status    int           // HTTP status, 0 when no response arrived
	Bytes     int64         // response body bytes read
	Err       ErrorKind     // why the exchange failed, ErrNone when a whole response arrived
}

// Latency returns the time from the scheduled send to completion.
func (r Record) Latency() time.Duration { return r.End - r.Scheduled }

// Failed reports whether the request failed: it got no whole response (Err is set), or
// its response has a status outside 200–399, as vegeta counts success.
func (r Record) Failed() bool { return r.Err != ErrNone || !successStatus(r.Status) }

// HTTPError reports whether the request got a whole response whose status marks it
// failed; such a request has Err == ErrNone.
func (r Record) HTTPError() bool { return r.Err == ErrNone && !successStatus(r.Status) }

// successStatus reports whether an HTTP status counts as a success: 200–399.
func successStatus(code int) bool { return code >= 200 && code <= 399 }

// classify names the kind of a request error. stopped reports that the whole run had
// been stopped and timedOut that the request's own timeout passed: the first surfaces
// as an error on a connection the run closed, the second as whatever error fasthttp
// made of the deadline, so neither can be told from err alone.
func classify(err error, stopped, timedOut bool) ErrorKind {
	if err == nil {
		return ErrNone // before netErr below, whose address would escape on every call
	}

	var netErr net.Error
	switch {
	case stopped:
		return ErrCanceled
	case timedOut:
		return ErrTimeout
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.As(err, &netErr) && netErr.Timeout():
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case isReset(err):
		return ErrReset
	default:
		return ErrOther
	}
}

// isReset reports a connection that the peer reset or closed before the response was
// whole. A peer that closes without answering looks like EOF on the client, which
// fasthttp reports as ErrConnectionClosed; for a load test it is the same failure as a
// reset.
func isReset(err error) bool {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// fasthttp reports a chunked body cut short and a malformed chunk with the same type
	// and hides the cause (ErrBrokenChunk has no Unwrap). A body broken off by a server
	// under load is by far the likelier, and net/http called it io.ErrUnexpectedEOF.
	var broken fasthttp.ErrBrokenChunk
	return errors.As(err, &broken)
}
