package kvcache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/sqlite"
	"github.com/keeperhq/keeper/storetest"
)

func openStore(t *testing.T) keeper.KVStore {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return sqlite.NewKVStore(db)
}

// The cache must behave exactly as the store beneath it.
func TestSharedSuite(t *testing.T) {
	storetest.KV(t, func(t *testing.T) keeper.KVStore {
		return kvcache.New(openStore(t), 1<<20)
	})
}

// A tiny budget forces evictions; behaviour must not change.
func TestSharedSuiteWithEvictions(t *testing.T) {
	storetest.KV(t, func(t *testing.T) keeper.KVStore {
		return kvcache.New(openStore(t), 4096)
	})
}

// TestReadersNeverSeeStaleValuesAfterWrites races readers against writers on a few keys.
// After every write returns, a read through the cache must give what the store holds.
func TestReadersNeverSeeStaleValuesAfterWrites(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	cache := kvcache.New(store, 1<<20)
	const keys = 4
	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		if _, err := cache.Create(ctx, []keeper.Entry{{Key: k, Value: "0"}}); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = cache.Get(ctx, fmt.Sprintf("k%d", (r+i)%keys))
			}
		}()
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		v := fmt.Sprint(i)
		if _, err := cache.Update(ctx, k, v, nil); err != nil {
			t.Fatalf("update %s: %v", k, err)
		}
		got, err := cache.Get(ctx, k)
		if err != nil || got.Value != v {
			t.Fatalf("after update %s=%s: cache gives %q, %v", k, v, got.Value, err)
		}
	}
	close(stop)
	wg.Wait()

	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		want, _ := store.Get(ctx, k)
		got, _ := cache.Get(ctx, k)
		if got != want {
			t.Errorf("%s: cache %+v, store %+v", k, got, want)
		}
	}
}

// BenchmarkCachedGet is the read path that GET /api/result takes for a hot key.
func BenchmarkCachedGet(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "kv.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cache := kvcache.New(sqlite.NewKVStore(db), 1<<20)
	ctx := context.Background()
	if _, err := cache.Create(ctx, []keeper.Entry{{Key: "k", Value: "v"}}); err != nil {
		b.Fatal(err)
	}

	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cache.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
