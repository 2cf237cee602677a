package auth

import (
	"context"
	"fmt"
	"sync"

	"github.com/keeperhq/keeper"
)

// defaultProfileCacheSize bounds the profile cache when Config leaves it zero: about
// 100 000 users of a few hundred bytes each, some tens of MiB at most.
const defaultProfileCacheSize = 100_000

// Profile returns the active user with that id, without its PasswordHash. A pending,
// disabled or unknown user gives user_not_found alike, so that the answer does not tell
// them apart. Active users are served from the profile cache once read; see Service.
func (s *Service) Profile(ctx context.Context, id int64) (keeper.User, error) {
	u, ok, err := s.activeUser(ctx, id)
	if err != nil {
		return keeper.User{}, fmt.Errorf("profile of user %d: %w", id, err)
	}
	if !ok {
		return keeper.User{}, keeper.Errorf(keeper.CodeUserNotFound, "user not found")
	}
	return u, nil
}

// Authenticate verifies an access token and returns its user, without PasswordHash.
// Every refusal is unauthorized: a token that Tokens.Verify refuses (with its message,
// "access token expired" or "access token invalid"), and a valid token whose user no
// longer exists or is not active. It runs on every authenticated request, so the user
// comes from the profile cache when it can.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (keeper.User, error) {
	claims, err := s.tokens.Verify(accessToken)
	if err != nil {
		return keeper.User{}, err
	}

	u, ok, err := s.activeUser(ctx, claims.UserID)
	if err != nil {
		return keeper.User{}, fmt.Errorf("authenticate user %d: %w", claims.UserID, err)
	}
	if !ok {
		return keeper.User{}, keeper.Errorf(keeper.CodeUnauthorized, "access token invalid")
	}
	return u, nil
}

// activeUser returns the user with that id when it is active, from the cache or else from
// the store, whose answer it then caches. ok is false for a missing or inactive user.
func (s *Service) activeUser(ctx context.Context, id int64) (u keeper.User, ok bool, err error) {
	if id <= 0 {
		return keeper.User{}, false, nil
	}
	if u, ok := s.profiles.get(id); ok {
		return u, true, nil
	}

	// The generation is read before the store, so that a change committed while the read
	// is under way keeps its stale result out of the cache.
	gen := s.profiles.generation()
	u, err = s.store.UserByID(ctx, id)
	if keeper.HasCode(err, keeper.CodeUserNotFound) {
		return keeper.User{}, false, nil
	}
	if err != nil {
		return keeper.User{}, false, err
	}
	if u.Status != keeper.StatusActive {
		return keeper.User{}, false, nil
	}

	u = publicUser(u)
	s.profiles.put(u, gen)
	return u, true, nil
}

// publicUser returns u without its password hash, the form in which the service hands
// users out and caches them.
func publicUser(u keeper.User) keeper.User {
	u.PasswordHash = ""
	return u
}

// profileCache holds active users by id, at most max of them. It never holds a miss or
// an inactive user, so that a user activated a moment ago is found at once.
//
// The cache stays exact against changes made through the same Service, which forgets a
// user after each one it commits. A put carries the generation read before its load, and
// any forget since then makes the put a no-op: a load that raced a change cannot bring
// back the state from before it.
type profileCache struct {
	mu    sync.RWMutex
	users map[int64]keeper.User
	max   int
	gen   uint64 // counts forgets
}

func newProfileCache(size int) *profileCache {
	return &profileCache{users: make(map[int64]keeper.User), max: size}
}

func (c *profileCache) get(id int64) (keeper.User, bool) {
	c.mu.RLock()
	u, ok := c.users[id]
	c.mu.RUnlock()
	return u, ok
}

func (c *profileCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put stores u unless a forget happened since gen was read. When the cache is full it
// evicts an arbitrary entry: the hot path stays a map read, with no recency to update.
func (c *profileCache) put(u keeper.User, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.gen != gen {
		return
	}
	if _, ok := c.users[u.ID]; !ok && len(c.users) >= c.max {
		for id := range c.users {
			delete(c.users, id)
			break
		}
	}
	c.users[u.ID] = u
}

// forget drops the user with that id and fails every put whose load began before.
func (c *profileCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()

	delete(c.users, id)
	c.gen++
}

// size returns the number of cached users.
func (c *profileCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.users)
}
