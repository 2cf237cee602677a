package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/sqlite"
)

// benchKeys is how many entries the benchmarks spread their calls over.
const benchKeys = 1000

// benchStore returns a store holding benchKeys entries of 100 bytes each.
func benchStore(b *testing.B) *sqlite.KVStore {
	b.Helper()
	kv := sqlite.NewKVStore(openTemp(b))
	entries := make([]keeper.Entry, benchKeys)
	for i := range entries {
		entries[i] = keeper.Entry{Key: benchKey(i), Value: strings.Repeat("v", 100)}
	}
	if _, err := kv.Create(context.Background(), entries); err != nil {
		b.Fatalf("create: got error %v, want none", err)
	}
	return kv
}

func benchKey(i int) string {
	return fmt.Sprintf("bench/%04d", i%benchKeys)
}

// BenchmarkKVGet measures reads through the reader pool, alone and from every core.
func BenchmarkKVGet(b *testing.B) {
	kv := benchStore(b)
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := kv.Get(ctx, benchKey(i)); err != nil {
				b.Fatalf("get: got error %v, want none", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := kv.Get(ctx, benchKey(int(n.Add(1)))); err != nil {
					b.Errorf("get: got error %v, want none", err)
					return
				}
			}
		})
	})
}

// BenchmarkKVUpdate measures writes, each one a transaction committed to the WAL, alone
// and with every core competing for the one writer connection.
func BenchmarkKVUpdate(b *testing.B) {
	kv := benchStore(b)
	ctx := context.Background()
	value := strings.Repeat("u", 100)

	b.Run("serial", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := kv.Update(ctx, benchKey(i), value, nil); err != nil {
				b.Fatalf("update: got error %v, want none", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := kv.Update(ctx, benchKey(int(n.Add(1))), value, nil); err != nil {
					b.Errorf("update: got error %v, want none", err)
					return
				}
			}
		})
	})
}
