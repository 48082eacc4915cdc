package broker

import (
	"context"
	"errors"
	"testing"
)

// TestOffsetManagerCoalesces checks that many commits become one proposal
// carrying the latest offset of each queue, and that a failed proposal keeps
// the commits for the next flush unless newer ones replaced them.
func TestOffsetManagerCoalesces(t *testing.T) {
	meta := newMetaStore()
	var proposals []*metaCommand
	fail := false
	propose := func(_ context.Context, c *metaCommand) (interface{}, error) {
		if fail {
			return nil, errors.New("not leader")
		}
		proposals = append(proposals, c)
		return meta.ApplyMeta(1, c.encode()), nil
	}
	o := newOffsetManager(meta, propose, 0)
	for client := 0; client < 3; client++ {
		for q := int32(0); q < 8; q++ {
			for off := int64(1); off <= 5; off++ {
				o.commit("g", "T", q, off*10+int64(client))
			}
		}
	}
	if err := o.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(proposals) != 1 || len(proposals[0].Offsets) != 8 {
		t.Fatalf("%d proposals, first with %d offsets; want 1 with 8", len(proposals), len(proposals[0].Offsets))
	}
	if off, ok := meta.Offset("g", "T", 3); !ok || off != 52 {
		t.Fatalf("replicated offset %d %v", off, ok)
	}
	// Nothing changed: no proposal.
	o.commit("g", "T", 3, 52)
	if err := o.flush(context.Background()); err != nil || len(proposals) != 1 {
		t.Fatalf("unchanged offsets proposed again: %v %d", err, len(proposals))
	}
	// A failed flush keeps the commit; a newer commit wins over the kept one.
	fail = true
	o.commit("g", "T", 0, 100)
	o.commit("g", "T", 1, 100)
	if err := o.flush(context.Background()); err == nil {
		t.Fatal("want the proposal error")
	}
	o.commit("g", "T", 1, 200)
	if off, _ := o.query("g", "T", 0); off != 100 {
		t.Fatalf("pending offset lost: %d", off)
	}
	fail = false
	if err := o.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, _ := meta.Offset("g", "T", 0); a != 100 {
		t.Fatalf("queue 0: %d", a)
	}
	if b, _ := meta.Offset("g", "T", 1); b != 200 {
		t.Fatalf("queue 1: %d", b)
	}
	o.commit("g", "T", 2, 7)
	o.drop()
	if off, _ := o.query("g", "T", 2); off == 7 {
		t.Fatal("drop kept a pending commit")
	}
}
