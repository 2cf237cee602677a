// Package kvcache keeps recently read key–value entries in memory in front of a
// keeper.KVStore, so that a read of a hot key costs a map look-up instead of a database
// query. It is only correct while this process is the sole writer of the store: writes
// made by another process are not seen until the entry is evicted.
package kvcache

import (
	"context"
	"sync"

	"github.com/keeperhq/keeper"
)

// Cache is a keeper.KVStore that serves reads from memory and passes everything else to
// the store beneath it.
//
// Writes never put values into the cache; they only evict the keys they touch, after
// the store has committed, and bump a generation counter. A read that misses fills the
// cache only if no write finished while it was reading, so a fill can never store a
// value that a finished write has replaced. That keeps the cache exact without
// ordering concurrent writers among themselves.
type Cache struct {
	store    keeper.KVStore
	maxBytes int64

	mu      sync.RWMutex
	entries map[string]keeper.Entry
	bytes   int64
	gen     uint64
}

// New returns a cache holding at most maxBytes of keys and values in front of store.
func New(store keeper.KVStore, maxBytes int64) *Cache {
	return &Cache{store: store, maxBytes: maxBytes, entries: make(map[string]keeper.Entry)}
}

// Get returns the entry from memory, or reads it from the store and remembers it.
func (c *Cache) Get(ctx context.Context, key string) (keeper.Entry, error) {
	c.mu.RLock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return e, nil
	}

	e, err := c.store.Get(ctx, key)
	if err != nil {
		return e, err
	}

	c.mu.Lock()
	if c.gen == gen {
		c.put(e)
	}
	c.mu.Unlock()
	return e, nil
}

// Create passes to the store and evicts the keys it named.
func (c *Cache) Create(ctx context.Context, entries []keeper.Entry) ([]keeper.Entry, error) {
	created, err := c.store.Create(ctx, entries)

	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	c.evict(keys...)
	return created, err
}

// Update passes to the store and evicts the key.
func (c *Cache) Update(ctx context.Context, key, value string,
	ifMatch []int64) (keeper.Entry, error) {
	e, err := c.store.Update(ctx, key, value, ifMatch)
	c.evict(key)
	return e, err
}

// Delete passes to the store and evicts the key.
func (c *Cache) Delete(ctx context.Context, key string, ifMatch []int64) error {
	err := c.store.Delete(ctx, key, ifMatch)
	c.evict(key)
	return err
}

// List passes to the store; listing is not cached.
func (c *Cache) List(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	return c.store.List(ctx, prefix, after, limit)
}

// evict forgets the keys and marks that a write has finished. It runs whether or not
// the write succeeded, since a failed commit may still have applied.
func (c *Cache) evict(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.gen++
	for _, k := range keys {
		if e, ok := c.entries[k]; ok {
			c.bytes -= size(e)
			delete(c.entries, k)
		}
	}
}

// put remembers e, first dropping arbitrary entries until it fits. Entries larger than
// a sixteenth of the budget are not kept, so one big value cannot flush the cache.
// The caller holds c.mu.
func (c *Cache) put(e keeper.Entry) {
	if old, ok := c.entries[e.Key]; ok {
		c.bytes -= size(old)
		delete(c.entries, e.Key)
	}
	n := size(e)
	if n > c.maxBytes/16 {
		return
	}
	for k, old := range c.entries {
		if c.bytes+n <= c.maxBytes {
			break
		}
		c.bytes -= size(old)
		delete(c.entries, k)
	}
	c.entries[e.Key] = e
	c.bytes += n
}

// size is what an entry costs the budget: its bytes plus a fixed overhead for the map
// slot and the strings' headers.
func size(e keeper.Entry) int64 {
	return int64(len(e.Key)+len(e.Value)) + 64
}
