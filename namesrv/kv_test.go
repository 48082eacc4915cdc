package namesrv

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
)

func TestKVStore(t *testing.T) {
	s := NewKVStore()
	if err := s.Put("ns", "a", "1"); err != nil {
		t.Fatal(err)
	}
	s.Put("ns", "b", "2")
	s.Put("other", "a", "x")
	if v, ok := s.Get("ns", "a"); !ok || v != "1" {
		t.Fatalf("get %q %v", v, ok)
	}
	if got := s.List("ns"); !reflect.DeepEqual(got, map[string]string{"a": "1", "b": "2"}) {
		t.Fatalf("list %v", got)
	}
	s.Delete("ns", "a")
	s.Delete("ns", "b")
	s.Delete("ns", "missing")
	if s.List("ns") != nil {
		t.Fatal("emptied namespace still listed")
	}
	if got := s.Namespaces(); !reflect.DeepEqual(got, []string{"other"}) {
		t.Fatalf("namespaces %v", got)
	}
}

func TestKVStoreBounded(t *testing.T) {
	s := NewKVStore()
	for i := 0; i < MaxKVEntries; i++ {
		if err := s.Put("ns", strconv.Itoa(i), "v"); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := s.Put("ns", "one-more", "v"); !errors.Is(err, ErrKVFull) {
		t.Fatalf("put beyond the limit: %v", err)
	}
	// Overwriting an existing key and putting after a delete still work.
	if err := s.Put("ns", "0", "w"); err != nil {
		t.Fatal(err)
	}
	s.Delete("ns", "1")
	if err := s.Put("ns", "one-more", "v"); err != nil {
		t.Fatal(err)
	}
}
