// Package loadtest sends HTTP requests at a service and records what each one did: when it
// was due, when it left, when it finished, its status, its size and the kind of any error.
// It succeeds the asyncio script that load-tested the Python system Keeper replaces (1000
// concurrent GETs, completion times plotted), which is burst mode here, and adds three
// more:
//
//   - burst: N requests released at the same instant, one connection each;
//   - rate: a constant, open-loop arrival rate for a duration, measured from each request's
//     scheduled send time so that a slow server cannot hide its queue (coordinated omission);
//   - concurrency: C workers in a closed loop, for a duration or a request count;
//   - sweep (see Sweep): rate runs at increasing rates until p99 latency passes a limit.
//
// Every request's record is kept, so percentiles are exact, not estimated. Results are
// reported as a Summary (text or JSON), a CSV of the records and PNG plots. A request
// failed when it got no whole response or its status is outside 200–399 (Record.Failed);
// the summary counts both kinds, and a sweep judges its error rate by them:
//
//	res, err := loadtest.Run(ctx, loadtest.Config{
//		URL: "http://127.0.0.1:8080/api/user/1", Mode: loadtest.ModeBurst, Requests: 1000,
//	})
//	if err != nil {
//		return err
//	}
//	fmt.Println(res.Summary().Latency.P99)
//	return res.WriteFiles("out")
//
// Main is the command-line front end, reached as `keeper loadtest`.
package loadtest
