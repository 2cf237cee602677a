package auth

import (
	"sync"
	"testing"

	"github.com/keeperhq/keeper"
)

func TestProfileCacheBound(t *testing.T) {
	c := newProfileCache(3)
	for id := int64(1); id <= 10; id++ {
		c.put(keeper.User{ID: id}, c.generation())
		if got := c.size(); got > 3 {
			t.Fatalf("after %d puts: got %d entries, want at most 3", id, got)
		}
	}

	// The last put always stays: eviction makes room for it.
	if u, ok := c.get(10); !ok || u.ID != 10 {
		t.Errorf("get(10): got %+v, %v, want the user just put", u, ok)
	}
}

func TestProfileCacheReplaceDoesNotEvict(t *testing.T) {
	c := newProfileCache(2)
	c.put(keeper.User{ID: 1, Name: "old"}, c.generation())
	c.put(keeper.User{ID: 2}, c.generation())
	c.put(keeper.User{ID: 1, Name: "new"}, c.generation())

	if got := c.size(); got != 2 {
		t.Errorf("got %d entries, want 2", got)
	}
	if u, _ := c.get(1); u.Name != "new" {
		t.Errorf("get(1): got name %q, want new", u.Name)
	}
}

func TestProfileCacheForget(t *testing.T) {
	c := newProfileCache(10)
	c.put(keeper.User{ID: 1}, c.generation())
	c.forget(1)

	if _, ok := c.get(1); ok {
		t.Error("get after forget: got a user, want none")
	}
}

func TestProfileCacheStalePut(t *testing.T) {
	c := newProfileCache(10)

	// A load starts, a change to another user commits, then the load finishes.
	gen := c.generation()
	c.forget(2)
	c.put(keeper.User{ID: 1}, gen)

	if _, ok := c.get(1); ok {
		t.Error("get after a put older than a forget: got a user, want none")
	}
	c.put(keeper.User{ID: 1}, c.generation())
	if _, ok := c.get(1); !ok {
		t.Error("get after a fresh put: got none, want the user")
	}
}

func TestProfileCacheConcurrent(t *testing.T) {
	c := newProfileCache(50)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				id := int64(w*1000 + i%100)
				c.put(keeper.User{ID: id}, c.generation())
				c.get(id)
				if i%10 == 0 {
					c.forget(id)
				}
			}
		})
	}
	wg.Wait()

	if got := c.size(); got > 50 {
		t.Errorf("got %d entries, want at most 50", got)
	}
}
