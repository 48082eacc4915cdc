package namesrv

import (
	"errors"
	"sort"
	"sync"
)

// MaxKVEntries bounds the KV store: PUT_KV_CONFIG is an unauthenticated network
// call, so the number of entries it can create is limited.
const MaxKVEntries = 100000

// ErrKVFull is returned by Put when a new key would exceed MaxKVEntries.
var ErrKVFull = errors.New("kv config store full")

// NamespaceOrderTopicConfig is the KV namespace whose entries are topic -> order
// config ("brokerA:4;brokerB:4"); routes and registration answers carry them.
const NamespaceOrderTopicConfig = "ORDER_TOPIC_CONFIG"

// KVStore is the namesrv's in-memory KV configuration (PUT/GET/DELETE_KV_CONFIG,
// GET_KVLIST_BY_NAMESPACE). It is not persisted: several namesrvs run with no sync
// between them anyway, so an operator re-applies KV config to each of them.
type KVStore struct {
	mu      sync.RWMutex
	tables  map[string]map[string]string
	entries int
}

// NewKVStore returns an empty store.
func NewKVStore() *KVStore {
	return &KVStore{tables: make(map[string]map[string]string)}
}

// Put sets namespace/key to value; a new key fails with ErrKVFull when the store
// holds MaxKVEntries.
func (s *KVStore) Put(namespace, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[namespace]
	if _, exists := t[key]; !exists {
		if s.entries >= MaxKVEntries {
			return ErrKVFull
		}
		s.entries++
	}
	if t == nil {
		t = make(map[string]string)
		s.tables[namespace] = t
	}
	t[key] = value
	return nil
}

// Get returns the value of namespace/key.
func (s *KVStore) Get(namespace, key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.tables[namespace][key]
	return v, ok
}

// Delete removes namespace/key.
func (s *KVStore) Delete(namespace, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[namespace]
	if _, ok := t[key]; ok {
		delete(t, key)
		s.entries--
	}
	if len(t) == 0 {
		delete(s.tables, namespace)
	}
}

// List returns a copy of namespace's table; nil when it is empty.
func (s *KVStore) List(namespace string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tables[namespace]
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

// Namespaces returns the namespaces holding at least one key, sorted.
func (s *KVStore) Namespaces() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tables))
	for ns := range s.tables {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}
