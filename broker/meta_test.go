package broker

import (
	"errors"
	"reflect"
	"testing"
)

func applyOK(t *testing.T, m *metaStore, c *metaCommand) {
	t.Helper()
	if r := m.ApplyMeta(1, c.encode()); r != nil {
		t.Fatalf("apply %s: %v", c.Op, r)
	}
}

// snapshotRoundTrip restores a fresh store from m's snapshot.
func snapshotRoundTrip(t *testing.T, m *metaStore) *metaStore {
	t.Helper()
	snap, err := m.SnapshotMeta()
	if err != nil {
		t.Fatal(err)
	}
	m2 := newMetaStore()
	if err := m2.RestoreMeta(snap); err != nil {
		t.Fatal(err)
	}
	return m2
}

func TestMetaStoreApplySnapshotRestore(t *testing.T) {
	m := newMetaStore()
	changes := 0
	m.onTopic = func() { changes++ }
	applyOK(t, m, &metaCommand{Op: opPutTopics, Time: 5, Topics: []TopicConfig{{TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}}})
	applyOK(t, m, &metaCommand{Op: opPutGroups, Groups: []GroupConfig{DefaultGroupConfig("g")}})
	applyOK(t, m, &metaCommand{Op: opCommitOffset, Offsets: []OffsetCommit{{"g", "T", 1, 42}, {"g", "T", 2, -5}}})
	applyOK(t, m, &metaCommand{Op: opPutKV, Key: "k", Value: []byte("v")})

	if tc, ok := m.Topic("T"); !ok || tc.WriteQueueNums != 4 || tc.Attributes == nil {
		t.Fatalf("topic %+v %v", tc, ok)
	}
	if o, ok := m.Offset("g", "T", 1); !ok || o != 42 {
		t.Fatalf("offset %d %v", o, ok)
	}
	if _, ok := m.Offset("g", "T", 2); ok {
		t.Fatal("negative offset must be ignored")
	}
	if _, v := m.Topics(); v.Counter != 1 || v.Timestamp != 5 || changes != 1 {
		t.Fatalf("version %+v changes %d", v, changes)
	}

	m2 := snapshotRoundTrip(t, m)
	t1, v1 := m.Topics()
	t2, v2 := m2.Topics()
	if !reflect.DeepEqual(t1, t2) || v1 != v2 || !reflect.DeepEqual(m.Groups(), m2.Groups()) {
		t.Fatal("restored state differs")
	}
	if o, ok := m2.Offset("g", "T", 1); !ok || o != 42 {
		t.Fatal("restored offset lost")
	}
	if v, ok := m2.KV("k"); !ok || string(v) != "v" {
		t.Fatal("restored kv lost")
	}

	applyOK(t, m, &metaCommand{Op: opDeleteTopic, Name: "T"})
	if _, ok := m.Topic("T"); ok {
		t.Fatal("topic not deleted")
	}
	if _, ok := m.Offset("g", "T", 1); ok {
		t.Fatal("offsets of a deleted topic must go")
	}
}

func TestMetaStoreRejectsBadCommands(t *testing.T) {
	m := newMetaStore()
	applyOK(t, m, &metaCommand{Op: opPutTopics, Topics: []TopicConfig{{TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}})
	before, _ := m.SnapshotMeta()
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"v":99,"op":"topics.put"}`), []byte(`{"v":1,"op":"nope"}`), []byte(`[]`)} {
		r := m.ApplyMeta(2, bad)
		err, ok := r.(error)
		if !ok || !errors.Is(err, errBadMetaCommand) {
			t.Fatalf("%q: want errBadMetaCommand, got %v", bad, r)
		}
	}
	after, _ := m.SnapshotMeta()
	if string(before) != string(after) {
		t.Fatal("bad commands changed the state")
	}
	if err := m.RestoreMeta([]byte("garbage")); err == nil {
		t.Fatal("want error on a bad snapshot")
	}
	if again, _ := m.SnapshotMeta(); string(again) != string(before) {
		t.Fatal("bad snapshot changed the state")
	}
}

func TestMemberDirectoryKeepsNewestTermAndSurvivesSnapshot(t *testing.T) {
	m := newMetaStore()
	changes := 0
	m.onMember = func() { changes++ }
	applyOK(t, m, &metaCommand{Op: opPutMember, Member: &Member{ID: "n0", Term: 3, ClientAddr: "127.0.0.1:10911", MemberAddr: "10.0.0.1:10911"}})
	applyOK(t, m, &metaCommand{Op: opPutMember, Member: &Member{ID: "n1", Term: 4, ClientAddr: "127.0.0.1:10921", MemberAddr: "10.0.0.2:10921"}})
	// A late entry of an older term changes nothing.
	applyOK(t, m, &metaCommand{Op: opPutMember, Member: &Member{ID: "n0", Term: 2, ClientAddr: "x:1", MemberAddr: "x:1"}})
	if e, ok := m.Member("n0"); !ok || e.Term != 3 || e.MemberAddr != "10.0.0.1:10911" {
		t.Fatalf("n0 entry %+v %v", e, ok)
	}
	if changes != 2 {
		t.Fatalf("%d directory change callbacks, want 2", changes)
	}
	for _, bad := range []*metaCommand{{Op: opPutMember}, {Op: opPutMember, Member: &Member{ID: "n2"}}} {
		if r := m.ApplyMeta(9, bad.encode()); !errors.Is(r.(error), errBadMetaCommand) {
			t.Fatalf("want errBadMetaCommand, got %v", r)
		}
	}
	m2 := snapshotRoundTrip(t, m)
	if !reflect.DeepEqual(m.Members(), m2.Members()) || len(m2.Members()) != 2 {
		t.Fatalf("restored directory %+v, want %+v", m2.Members(), m.Members())
	}
}

func FuzzApplyMeta(f *testing.F) {
	f.Add((&metaCommand{Op: opPutTopics, Topics: []TopicConfig{{TopicName: "T"}}}).encode())
	f.Add((&metaCommand{Op: opCommitOffset, Offsets: []OffsetCommit{{"g", "t", 0, 1}}}).encode())
	f.Add([]byte(`{"v":1,"op":"kv.put","key":"a"}`))
	f.Add((&metaCommand{Op: opPutMember, Member: &Member{ID: "n0", Term: 2, ClientAddr: "a:1", MemberAddr: "b:1"}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m := newMetaStore()
		m.ApplyMeta(1, b)
		_ = m.RestoreMeta(b)
		if _, err := m.SnapshotMeta(); err != nil {
			t.Fatal(err)
		}
	})
}
