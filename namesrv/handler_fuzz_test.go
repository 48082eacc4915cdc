package namesrv

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
	"github.com/raftmq/raftmq/wire/wiretest"
)

// FuzzRegisterBrokerRequest drives the REGISTER_BROKER handler with arbitrary
// header fields and bodies. Whatever it accepts must yield routes whose JSON
// the Go client's brokerAddrs parser reads back exactly.
func FuzzRegisterBrokerRequest(f *testing.F) {
	f.Add("broker-a", "127.0.0.1:10911", "0", "DefaultCluster", "", "", "", []byte(wiretest.RegisterJava))
	f.Add("broker-a", "127.0.0.1:10911", "0", "DefaultCluster", "n0", "0", "n1,n2", []byte(wiretest.RegisterJava))
	f.Add("broker-a", "127.0.0.1:10911", "2", "DefaultCluster", "n1", "1", "", []byte(wiretest.RegisterJava))
	f.Add("broker-a", "127.0.0.1:10911", "2", "DefaultCluster", "n@1", "x", "n0,,a b", []byte(wiretest.RegisterJava))
	f.Add("b", "[::1]:1", "3", "c", "", "", "", []byte(`{}`))
	f.Add("b", "host:99999", "-1", "c", "", "", "", []byte(``))
	f.Add("b c", "a,b:1", "x", "", "", "", "", []byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"perm":6,"writeQueueNums":2}}}}`))
	f.Fuzz(func(t *testing.T, brokerName, brokerAddr, brokerID, cluster, memberID, ordinal, unreachable string, body []byte) {
		srv := New(Config{})
		ext := map[string]string{
			"brokerName": brokerName, "brokerAddr": brokerAddr, "brokerId": brokerID, "clusterName": cluster,
		}
		if memberID != "" {
			ext[wire.ExtMemberID] = memberID
		}
		if ordinal != "" {
			ext[wire.ExtMemberOrdinal] = ordinal
		}
		if unreachable != "" {
			ext[wire.ExtUnreachable] = unreachable
		}
		req := remoting.NewRequest(remoting.RegisterBroker, ext, body)
		resp := srv.handleRegisterBroker(context.Background(), nil, req)
		if resp == nil {
			t.Fatal("no response")
		}
		if resp.Code != remoting.Success {
			if resp.Remark == "" {
				t.Fatalf("error code %d without a remark", resp.Code)
			}
			if len(srv.Table().ClusterInfo().BrokerAddrTable) != 0 {
				t.Fatal("refused registration changed the table")
			}
			return
		}
		for _, topic := range srv.Table().AllTopics() {
			b, ok, err := srv.Table().TopicRouteJSON(topic)
			if !ok || err != nil {
				t.Fatalf("topic %q listed without a route: %v", topic, err)
			}
			var raw struct {
				BrokerDatas []struct {
					BrokerAddrs json.RawMessage `json:"brokerAddrs"`
				} `json:"brokerDatas"`
				QueueDatas []wire.QueueData `json:"queueDatas"`
			}
			if err := json.Unmarshal(b, &raw); err != nil || raw.QueueDatas == nil || len(raw.BrokerDatas) == 0 {
				t.Fatalf("route %s: %v", b, err)
			}
			got := wiretest.GoClientBrokerAddrs(string(raw.BrokerDatas[0].BrokerAddrs))
			var want map[int64]string
			rd, _ := srv.Table().TopicRoute(topic)
			want = rd.BrokerDatas[0].BrokerAddrs
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Go client would read %v from %s, want %v", got, raw.BrokerDatas[0].BrokerAddrs, want)
			}
		}
		srv.Table().ScanExpired(time.Now().Add(time.Hour))
	})
}
