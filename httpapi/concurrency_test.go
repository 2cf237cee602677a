package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// op is one write a concurrent writer made and how the server answered.
type op struct {
	kind   string // put, post, patch, delete
	keys   []string
	value  string
	status int
}

// TestConcurrentWriters runs 500 writers doing mixed PUT, POST, PATCH and DELETE on a
// few overlapping keys, then checks that no request failed with a 5xx and that the
// final state is exactly what the successful answers imply: for every key, successful
// creations and deletions alternate (so nothing was lost or half-written) and a present
// key holds a value that a successful write gave it.
func TestConcurrentWriters(t *testing.T) {
	const writers, opsEach, nkeys = 500, 4, 16
	e := newEnv(t)
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}

	results := make([][]op, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range opsEach {
				value := fmt.Sprintf("w%d-%d", w, i)
				results[w] = append(results[w], e.randomWrite(rng, nkeys, value))
			}
		}()
	}
	wg.Wait()

	creates, deletes := map[string]int{}, map[string]int{}
	written := map[string]map[string]bool{}
	note := func(k, v string) {
		if written[k] == nil {
			written[k] = map[string]bool{}
		}
		written[k][v] = true
	}
	for _, ops := range results {
		for _, o := range ops {
			if o.status >= 500 || o.status == 0 {
				t.Fatalf("%s %v: status %d", o.kind, o.keys, o.status)
			}
			if o.status >= 300 {
				continue
			}
			for _, k := range o.keys {
				switch o.kind {
				case "put", "post":
					creates[k]++
					note(k, o.value)
				case "patch":
					note(k, o.value)
				case "delete":
					deletes[k]++
				}
			}
		}
	}

	final := e.state()
	for i := range nkeys {
		k := fmt.Sprintf("k%d", i)
		v, present := final[k]
		diff := creates[k] - deletes[k]
		want := map[bool]int{true: 1, false: 0}[present]
		if diff != want {
			t.Errorf("%s: %d creations and %d deletions succeeded, but present=%v",
				k, creates[k], deletes[k], present)
		}
		if present && !written[k][v] {
			t.Errorf("%s holds %q, which no successful write gave it", k, v)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "locked") ||
		strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the log reports errors:\n%.2000s", logs)
	}
}

// randomWrite sends one random write and reports it.
func (e *env) randomWrite(rng *rand.Rand, nkeys int, value string) op {
	e.t.Helper()
	k1 := fmt.Sprintf("k%d", rng.IntN(nkeys))
	k2 := fmt.Sprintf("k%d", rng.IntN(nkeys))
	keys := []string{k1}
	if k2 != k1 && rng.IntN(2) == 0 {
		keys = append(keys, k2)
	}

	o := op{keys: keys, value: value}
	var rq req
	switch rng.IntN(4) {
	case 0:
		o.kind, o.value = "put", ""
		rq = req{method: "PUT", path: "/api/result?key=" + strings.Join(keys, "&key=")}
	case 1:
		o.kind = "post"
		body := map[string]string{}
		for _, k := range keys {
			body[k] = value
		}
		b, _ := json.Marshal(body)
		rq = req{method: "POST", path: "/api/result", body: string(b), ctype: "json"}
	case 2:
		o.kind, o.keys = "patch", keys[:1]
		rq = req{method: "PATCH", path: "/api/result?key=" + k1,
			body: `{"value":"` + value + `"}`, ctype: "json"}
	default:
		o.kind, o.keys = "delete", keys[:1]
		rq = req{method: "DELETE", path: "/api/result?key=" + k1}
	}
	got, err := e.try(rq)
	if err != nil {
		e.t.Error(err)
	}
	o.status = got.status
	return o
}
