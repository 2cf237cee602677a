package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keeperhq/keeper"
)

// KV runs the key–value cases. open returns a store on a fresh, empty database.
func KV(t *testing.T, open func(t *testing.T) keeper.KVStore) {
	t.Run("GetMissing", func(t *testing.T) { kvGetMissing(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { kvRoundTrip(t, open(t)) })
	t.Run("CreateBatch", func(t *testing.T) { kvCreateBatch(t, open(t)) })
	t.Run("CreateEmpty", func(t *testing.T) { kvCreateEmpty(t, open(t)) })
	t.Run("CreateAllOrNothing", func(t *testing.T) { kvCreateAllOrNothing(t, open(t)) })
	t.Run("CreateNamesPresentKeys", func(t *testing.T) { kvCreateNamesKeys(t, open(t)) })
	t.Run("CreateDuplicateInBatch", func(t *testing.T) { kvCreateDuplicate(t, open(t)) })
	t.Run("VersionsNeverReused", func(t *testing.T) { kvVersionsNeverReused(t, open(t)) })
	t.Run("IfMatch", func(t *testing.T) { kvIfMatch(t, open) })
	t.Run("Missing", func(t *testing.T) { kvMissing(t, open(t)) })
	t.Run("List", func(t *testing.T) { kvList(t, open(t)) })
	t.Run("ListPaging", func(t *testing.T) { kvListPaging(t, open(t)) })
	t.Run("ContextCanceled", func(t *testing.T) { kvCanceled(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { kvConcurrent(t, open(t)) })
}

func kvGetMissing(t *testing.T, s keeper.KVStore) {
	_, err := s.Get(context.Background(), "absent")
	wantCode(t, err, keeper.CodeKeyNotFound)
}

// kvRoundTrip checks that values come back byte for byte, through Create and Update.
func kvRoundTrip(t *testing.T, s keeper.KVStore) {
	cases := []struct {
		name  string
		value string
	}{
		{"empty", ""},
		{"ascii", "hello"},
		{"nul bytes", "a\x00b\x00\x00c\x00"},
		{"multibyte", "żółć 日本語 🙂"},
		{"json", `{"a":[1,2,{"b":null}]}`},
		{"one mebibyte", bigValue(keeper.DefaultMaxValueBytes)},
	}
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("round/%d", i)
			created := mustCreate(t, s, keeper.Entry{Key: key, Value: c.value})
			wantEntry(t, s, key, c.value, created[0].Version)

			updated, err := s.Update(ctx, key, c.value+"!", nil)
			noError(t, err, "update")
			wantEntry(t, s, key, c.value+"!", updated.Version)
		})
	}
}

func kvCreateBatch(t *testing.T, s keeper.KVStore) {
	in := []keeper.Entry{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "c", Value: "3"}}
	created := mustCreate(t, s, in...)

	if len(created) != len(in) {
		t.Fatalf("got %d entries, want %d", len(created), len(in))
	}
	for i, e := range created {
		if e.Key != in[i].Key || e.Value != in[i].Value {
			t.Errorf("entry %d: got %q=%q, want %q=%q", i, e.Key, e.Value, in[i].Key, in[i].Value)
		}
		if e.Version != created[0].Version || e.Version <= 0 {
			t.Errorf("entry %d: got version %d, want %d (one positive version per batch)",
				i, e.Version, created[0].Version)
		}
		wantEntry(t, s, e.Key, e.Value, e.Version)
	}
}

func kvCreateEmpty(t *testing.T, s keeper.KVStore) {
	created, err := s.Create(context.Background(), nil)
	noError(t, err, "create nothing")
	if len(created) != 0 {
		t.Errorf("got %d entries, want 0", len(created))
	}
}

// kvCreateAllOrNothing checks that a batch with one present key writes nothing.
func kvCreateAllOrNothing(t *testing.T, s keeper.KVStore) {
	ctx := context.Background()
	old := mustCreate(t, s, keeper.Entry{Key: "present", Value: "old"})[0]

	_, err := s.Create(ctx, []keeper.Entry{
		{Key: "new1", Value: "x"}, {Key: "present", Value: "new"}, {Key: "new2", Value: "y"},
	})
	wantCode(t, err, keeper.CodeKeyExists)

	for _, key := range []string{"new1", "new2"} {
		_, err := s.Get(ctx, key)
		wantCode(t, err, keeper.CodeKeyNotFound)
	}
	wantEntry(t, s, "present", "old", old.Version)
}

func kvCreateNamesKeys(t *testing.T, s keeper.KVStore) {
	ctx := context.Background()
	present := []keeper.Entry{{Key: "p/one"}, {Key: "p/two"}, {Key: "p/three"}}
	mustCreate(t, s, present...)

	_, err := s.Create(ctx, append([]keeper.Entry{{Key: "p/absent"}}, present...))
	wantCode(t, err, keeper.CodeKeyExists)
	msg := messageOf(err)
	for _, e := range present {
		if !strings.Contains(msg, e.Key) {
			t.Errorf("got message %q, want it to name %q", msg, e.Key)
		}
	}
	if strings.Contains(msg, "p/absent") {
		t.Errorf("got message %q, want it not to name the absent key", msg)
	}

	t.Run("capped", func(t *testing.T) {
		many := make([]keeper.Entry, 50)
		for i := range many {
			many[i] = keeper.Entry{Key: fmt.Sprintf("many/%02d", i)}
		}
		mustCreate(t, s, many...)

		_, err := s.Create(ctx, many)
		wantCode(t, err, keeper.CodeKeyExists)
		named := strings.Count(messageOf(err), "many/")
		if named == 0 || named == len(many) {
			t.Errorf("got %d keys named, want some but not all %d", named, len(many))
		}
	})
}

func kvCreateDuplicate(t *testing.T, s keeper.KVStore) {
	ctx := context.Background()
	_, err := s.Create(ctx, []keeper.Entry{{Key: "d", Value: "1"}, {Key: "d", Value: "2"}})
	wantCode(t, err, keeper.CodeDuplicateKey)

	_, err = s.Get(ctx, "d")
	wantCode(t, err, keeper.CodeKeyNotFound)
}

// kvVersionsNeverReused walks one key through create, update, delete and create again,
// with writes to other keys in between, and checks that versions only grow.
func kvVersionsNeverReused(t *testing.T, s keeper.KVStore) {
	ctx := context.Background()
	var seen []int64
	next := func(what string, v int64) {
		t.Helper()
		if len(seen) > 0 && v <= seen[len(seen)-1] {
			t.Fatalf("%s: got version %d, want more than %d", what, v, seen[len(seen)-1])
		}
		seen = append(seen, v)
	}

	next("create k", mustCreate(t, s, keeper.Entry{Key: "k", Value: "1"})[0].Version)
	e, err := s.Update(ctx, "k", "2", nil)
	noError(t, err, "update k")
	next("update k", e.Version)
	next("create other", mustCreate(t, s, keeper.Entry{Key: "other"})[0].Version)

	noError(t, s.Delete(ctx, "k", nil), "delete k")
	recreated := mustCreate(t, s, keeper.Entry{Key: "k", Value: "3"})[0]
	next("create k again", recreated.Version)

	// An ETag taken before the delete must not match the new entry.
	_, err = s.Update(ctx, "k", "4", seen[:2])
	wantCode(t, err, keeper.CodeVersionMismatch)
	err = s.Delete(ctx, "k", seen[:2])
	wantCode(t, err, keeper.CodeVersionMismatch)
	wantEntry(t, s, "k", "3", recreated.Version)
}

// kvIfMatch runs Update and Delete against every shape of ifMatch.
func kvIfMatch(t *testing.T, open func(t *testing.T) keeper.KVStore) {
	cases := []struct {
		name    string
		ifMatch func(current int64) []int64
		want    keeper.Code // "" for success
	}{
		{"none", func(int64) []int64 { return nil }, ""},
		{"empty", func(int64) []int64 { return []int64{} }, ""},
		{"current", func(v int64) []int64 { return []int64{v} }, ""},
		{"stale", func(v int64) []int64 { return []int64{v - 1} }, keeper.CodeVersionMismatch},
		{"future", func(v int64) []int64 { return []int64{v + 1} }, keeper.CodeVersionMismatch},
		{"list with current", func(v int64) []int64 { return []int64{v - 1, v, v + 7} }, ""},
		{"list without", func(v int64) []int64 { return []int64{v - 1, v + 7} },
			keeper.CodeVersionMismatch},
	}
	for _, c := range cases {
		t.Run("Update/"+c.name, func(t *testing.T) {
			s := open(t)
			old := setUpVersioned(t, s)
			e, err := s.Update(context.Background(), "k", "new", c.ifMatch(old.Version))
			if c.want != "" {
				wantCode(t, err, c.want)
				wantEntry(t, s, "k", old.Value, old.Version)
				return
			}
			noError(t, err, "update")
			wantEntry(t, s, "k", "new", e.Version)
		})
		t.Run("Delete/"+c.name, func(t *testing.T) {
			s := open(t)
			old := setUpVersioned(t, s)
			err := s.Delete(context.Background(), "k", c.ifMatch(old.Version))
			if c.want != "" {
				wantCode(t, err, c.want)
				wantEntry(t, s, "k", old.Value, old.Version)
				return
			}
			noError(t, err, "delete")
			_, err = s.Get(context.Background(), "k")
			wantCode(t, err, keeper.CodeKeyNotFound)
		})
	}
}

// kvMissing checks that Update and Delete of an absent key say so, with or without
// ifMatch, and create nothing.
func kvMissing(t *testing.T, s keeper.KVStore) {
	ctx := context.Background()
	for _, ifMatch := range [][]int64{nil, {1}} {
		t.Run(fmt.Sprintf("ifMatch=%v", ifMatch), func(t *testing.T) {
			_, err := s.Update(ctx, "absent", "v", ifMatch)
			wantCode(t, err, keeper.CodeKeyNotFound)
			err = s.Delete(ctx, "absent", ifMatch)
			wantCode(t, err, keeper.CodeKeyNotFound)
			_, err = s.Get(ctx, "absent")
			wantCode(t, err, keeper.CodeKeyNotFound)
		})
	}
}

// listKeys are chosen so that a LIKE pattern, a case-insensitive or a code-point
// comparison would each give a different answer from byte order.
var listKeys = []string{
	"a", "a%b", "a%c", "a_b", "ab", "aB", "a\u00e9", "a\u00e9z", "b", "%", "_", "%x",
	"\u65e5\u672c", "\u65e5\u672c\u8a9e", "\u65e5\u672c\uff01", "\U0001F642", "\uffff",
}

func kvList(t *testing.T, s keeper.KVStore) {
	entries := make([]keeper.Entry, len(listKeys))
	for i, k := range listKeys {
		entries[i] = keeper.Entry{Key: k, Value: "v"}
	}
	mustCreate(t, s, entries...)

	cases := []struct {
		name, prefix, after string
		limit               int
		want                []string
	}{
		{"all", "", "", 100, sortedKeys("")},
		{"percent is literal", "a%", "", 100, []string{"a%b", "a%c"}},
		{"underscore is literal", "a_", "", 100, []string{"a_b"}},
		{"lone percent", "%", "", 100, []string{"%", "%x"}},
		{"case matters", "aB", "", 100, []string{"aB"}},
		{"two-byte rune", "a\u00e9", "", 100, []string{"a\u00e9", "a\u00e9z"}},
		{"three-byte runes", "\u65e5\u672c", "", 100,
			[]string{"\u65e5\u672c", "\u65e5\u672c\u8a9e", "\u65e5\u672c\uff01"}},
		{"after inside prefix", "\u65e5\u672c", "\u65e5\u672c", 100,
			[]string{"\u65e5\u672c\u8a9e", "\u65e5\u672c\uff01"}},
		{"after before prefix", "b", "a", 100, []string{"b"}},
		{"after beyond prefix", "a", "b", 100, []string{}},
		{"limit", "a", "", 3, []string{"a", "a%b", "a%c"}},
		{"limit after", "a", "a%c", 2, []string{"aB", "a_b"}},
		{"no match", "zzz", "", 100, []string{}},
		{"zero limit", "", "", 0, []string{}},
		{"key equals prefix only", "b", "", 100, []string{"b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.List(context.Background(), c.prefix, c.after, c.limit)
			noError(t, err, "list")
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// kvListPaging pages through each prefix two keys at a time and checks that the pages
// add up to every matching key exactly once, in byte order.
func kvListPaging(t *testing.T, s keeper.KVStore) {
	entries := make([]keeper.Entry, len(listKeys))
	for i, k := range listKeys {
		entries[i] = keeper.Entry{Key: k}
	}
	mustCreate(t, s, entries...)

	for _, prefix := range []string{"", "a", "a%", "%", "\u65e5", "\u65e5\u672c"} {
		t.Run(fmt.Sprintf("prefix=%q", prefix), func(t *testing.T) {
			var got []string
			after := ""
			for range len(listKeys) + 1 {
				page, err := s.List(context.Background(), prefix, after, 2)
				noError(t, err, "list")
				got = append(got, page...)
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1]
			}
			if want := sortedKeys(prefix); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// sortedKeys returns the listKeys that start with prefix, in byte order.
func sortedKeys(prefix string) []string {
	var keys []string
	for _, k := range listKeys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // Go compares strings byte by byte
	return keys
}

// kvCanceled checks that a canceled context stops every method and writes nothing.
func kvCanceled(t *testing.T, s keeper.KVStore) {
	mustCreate(t, s, keeper.Entry{Key: "k", Value: "old"})
	ctx := canceled()

	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Create", func() error {
			_, err := s.Create(ctx, []keeper.Entry{{Key: "n"}})
			return err
		}},
		{"Update", func() error { _, err := s.Update(ctx, "k", "new", nil); return err }},
		{"Delete", func() error { return s.Delete(ctx, "k", nil) }},
		{"List", func() error { _, err := s.List(ctx, "", "", 10); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("got error %v, want context.Canceled", err)
			}
		})
	}

	got, err := s.Get(context.Background(), "k")
	noError(t, err, "get after canceled writes")
	if got.Value != "old" {
		t.Errorf("got value %q, want %q", got.Value, "old")
	}
	_, err = s.Get(context.Background(), "n")
	wantCode(t, err, keeper.CodeKeyNotFound)
}

// kvWrite is one successful write seen by the concurrency case.
type kvWrite struct {
	key     string
	value   string
	version int64
	deleted bool // a delete of the entry at version
}

// kvConcurrent runs 200 goroutines of mixed writes on 20 overlapping keys, then checks
// that no call failed unexpectedly and that each key ends as its successful writes imply.
// Deletes name the version they remove, so the newest version written to a key tells
// whether the key must be present and with which value.
func kvConcurrent(t *testing.T, s keeper.KVStore) {
	const goroutines, keys, rounds = 200, 20, 3
	var (
		mu     sync.Mutex
		writes []kvWrite
		wg     sync.WaitGroup
	)
	record := func(w kvWrite) {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, w)
	}

	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("c/%02d", (g+r)%keys)
				value := fmt.Sprintf("g%d-r%d", g, r)
				if w, ok := kvMixedWrite(t, s, (g+r)%3, key, value); ok {
					record(w)
				}
			}
		})
	}
	wg.Wait()

	checkVersionsUnique(t, writes)
	for k := range keys {
		key := fmt.Sprintf("c/%02d", k)
		wantFinalState(t, s, key, writes)
	}
}

// kvMixedWrite does one create, update or delete and reports the write when it succeeded.
// Errors that a racing writer explains are expected; any other is a failure.
func kvMixedWrite(t *testing.T, s keeper.KVStore, op int, key, value string) (kvWrite, bool) {
	ctx := context.Background()
	var err error
	switch op {
	case 0:
		var created []keeper.Entry
		if created, err = s.Create(ctx, []keeper.Entry{{Key: key, Value: value}}); err == nil {
			return kvWrite{key: key, value: value, version: created[0].Version}, true
		}
	case 1:
		var e keeper.Entry
		if e, err = s.Update(ctx, key, value, nil); err == nil {
			return kvWrite{key: key, value: value, version: e.Version}, true
		}
	default:
		var e keeper.Entry
		if e, err = s.Get(ctx, key); err == nil {
			if err = s.Delete(ctx, key, []int64{e.Version}); err == nil {
				return kvWrite{key: key, version: e.Version, deleted: true}, true
			}
		}
	}

	expected := keeper.HasCode(err, keeper.CodeKeyExists) ||
		keeper.HasCode(err, keeper.CodeKeyNotFound) ||
		keeper.HasCode(err, keeper.CodeVersionMismatch)
	if !expected {
		t.Errorf("op %d on %s: got error %v, want none or a conflict code", op, key, err)
	}
	return kvWrite{}, false
}

// checkVersionsUnique fails when two successful single-key writes got the same version.
func checkVersionsUnique(t *testing.T, writes []kvWrite) {
	t.Helper()
	seen := make(map[int64]string)
	for _, w := range writes {
		if w.deleted {
			continue
		}
		if other, ok := seen[w.version]; ok {
			t.Errorf("version %d given to writes on %s and %s", w.version, other, w.key)
		}
		seen[w.version] = w.key
	}
}

// wantFinalState checks key against the newest version written to it.
func wantFinalState(t *testing.T, s keeper.KVStore, key string, writes []kvWrite) {
	t.Helper()
	var newest kvWrite
	deleted := make(map[int64]bool)
	for _, w := range writes {
		switch {
		case w.key != key:
		case w.deleted:
			deleted[w.version] = true
		case w.version > newest.version:
			newest = w
		}
	}

	got, err := s.Get(context.Background(), key)
	if newest.version == 0 || deleted[newest.version] {
		if !keeper.HasCode(err, keeper.CodeKeyNotFound) {
			t.Errorf("%s: got %+v, %v, want key_not_found", key, got, err)
		}
		return
	}
	if err != nil || got.Value != newest.value || got.Version != newest.version {
		t.Errorf("%s: got %q at %d (%v), want %q at %d",
			key, got.Value, got.Version, err, newest.value, newest.version)
	}
}

// setUpVersioned creates key k and updates it once, so that its version is not the
// first one and v-1 is a plausible stale version.
func setUpVersioned(t *testing.T, s keeper.KVStore) keeper.Entry {
	t.Helper()
	mustCreate(t, s, keeper.Entry{Key: "k", Value: "first"})
	e, err := s.Update(context.Background(), "k", "second", nil)
	noError(t, err, "update")
	return e
}

func mustCreate(t *testing.T, s keeper.KVStore, entries ...keeper.Entry) []keeper.Entry {
	t.Helper()
	created, err := s.Create(context.Background(), entries)
	noError(t, err, "create")
	return created
}

// wantEntry fails unless key holds exactly value at version.
func wantEntry(t *testing.T, s keeper.KVStore, key, value string, version int64) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	noError(t, err, "get "+key)
	if got.Key != key || got.Version != version {
		t.Errorf("got %q at %d, want %q at %d", got.Key, got.Version, key, version)
	}
	if got.Value != value {
		t.Errorf("%s: got a value of %d bytes (%.20q), want %d bytes (%.20q)",
			key, len(got.Value), got.Value, len(value), value)
	}
}

// bigValue returns n bytes that cycle through every byte value, NUL included.
func bigValue(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return string(b)
}

// messageOf returns the client-safe message of a domain error.
func messageOf(err error) string {
	var e *keeper.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}
