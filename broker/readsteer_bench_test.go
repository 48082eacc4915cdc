package broker

import (
	"testing"
	"time"

	"github.com/raftmq/raftmq/dledger"
)

func BenchmarkSteerDecideLeader(b *testing.B) {
	now := time.Now()
	p := dledger.ReadProgress{Leader: true, LeaderID: "n0", CommitIndex: 100,
		Peers: []dledger.PeerProgress{{ID: "n1", Contact: now, LastLog: 100}, {ID: "n2", Contact: now, LastLog: 100}}}
	s := newReadSteer([]string{"n0", "n1", "n2"}, 0, true, time.Hour, func() dledger.ReadProgress { return p })
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.decide("TopicTest", int32(i&7))
	}
}
