package acl

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/raftmq/raftmq/remoting"
)

// resourceKind says whether a needed permission is on a topic or a group.
type resourceKind uint8

const (
	kindTopic resourceKind = iota
	kindGroup
)

func (k resourceKind) String() string {
	if k == kindGroup {
		return "group"
	}
	return "topic"
}

// need is one permission a request needs.
type need struct {
	kind resourceKind
	name string
	perm Perm
}

// rule is how one request code is authorized.
type rule struct {
	// admin: only an admin account may send the code.
	admin bool
	// needs lists the permissions the request needs on its topics and
	// groups; nil needs only a valid signature. An error refuses the request
	// (a body the check cannot read is one the handler would refuse too).
	needs func(req *remoting.Command) ([]need, error)
}

// retryTopicPrefix marks a consumer group's retry topic, %RETRY%<group>.
const retryTopicPrefix = "%RETRY%"

// topicNeed is the permission on topic, or SUB on its group when topic is a
// retry topic (as RocketMQ: a retry topic belongs to its consumer group).
func topicNeed(topic string, perm Perm) need {
	if g, ok := strings.CutPrefix(topic, retryTopicPrefix); ok {
		return need{kind: kindGroup, name: g, perm: PermSub}
	}
	return need{kind: kindTopic, name: topic, perm: perm}
}

// fromExt builds a needs function from ext fields: topicKey (may be "")
// needs perm on the topic, groupKey (may be "") SUB on the group. Absent or
// empty fields need nothing: such a request names no data and its handler
// refuses it.
func fromExt(topicKey string, perm Perm, groupKey string) func(*remoting.Command) ([]need, error) {
	return func(req *remoting.Command) ([]need, error) {
		var out []need
		if t := req.Ext(topicKey); topicKey != "" && t != "" {
			out = append(out, topicNeed(t, perm))
		}
		if g := req.Ext(groupKey); groupKey != "" && g != "" {
			out = append(out, need{kind: kindGroup, name: g, perm: PermSub})
		}
		return out, nil
	}
}

// heartbeatNeeds: SUB on every consumer group and every topic it subscribes
// (RocketMQ checks the same). The JSON is read with the broker's field names
// and encoding/json's rules, so both see the same groups.
func heartbeatNeeds(req *remoting.Command) ([]need, error) {
	var hb struct {
		ConsumerDataSet []struct {
			GroupName           string `json:"groupName"`
			SubscriptionDataSet []struct {
				Topic string `json:"topic"`
			} `json:"subscriptionDataSet"`
		} `json:"consumerDataSet"`
	}
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return nil, fmt.Errorf("heartbeat body: %v", err)
	}
	var out []need
	for _, c := range hb.ConsumerDataSet {
		out = append(out, need{kind: kindGroup, name: c.GroupName, perm: PermSub})
		for _, s := range c.SubscriptionDataSet {
			out = append(out, topicNeed(s.Topic, PermSub))
		}
	}
	return out, nil
}

// lockNeeds: SUB on the group and on every queue's topic of a LOCK/UNLOCK_BATCH_MQ body.
func lockNeeds(req *remoting.Command) ([]need, error) {
	var body struct {
		ConsumerGroup string `json:"consumerGroup"`
		MQSet         []struct {
			Topic string `json:"topic"`
		} `json:"mqSet"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return nil, fmt.Errorf("lock body: %v", err)
	}
	out := []need{{kind: kindGroup, name: body.ConsumerGroup, perm: PermSub}}
	for _, q := range body.MQSet {
		out = append(out, topicNeed(q.Topic, PermSub))
	}
	return out, nil
}

// Request codes named by RocketMQ but not by package remoting (they are
// served by the broker or namesrv under these numbers).
const (
	codeUpdateBrokerConfig          int32 = 25
	codeGetBrokerConfig             int32 = 26
	codeUpdateAndCreateSubGroup     int32 = 200
	codeDeleteSubGroup              int32 = 207
	codeInvokeBrokerToResetOffset   int32 = 222
	codeInvokeBrokerToGetConsumerSt int32 = 223
	codeUpdateNamesrvConfig         int32 = 318
	codeGetNamesrvConfig            int32 = 319
)

var (
	signedOnly = rule{}
	adminOnly  = rule{admin: true}
)

// rules builds the table. Every code of remoting.RequestCodes has an entry
// (a test checks it); a code without one is treated as admin-only.
func rules() map[int32]rule {
	v1send := rule{needs: fromExt("topic", PermPub, "")}
	v2send := rule{needs: fromExt("b", PermPub, "")} // V2 headers: b = topic
	topicSub := rule{needs: fromExt("topic", PermSub, "")}
	groupSub := rule{needs: fromExt("", 0, "consumerGroup")}
	topicAndGroupSub := rule{needs: fromExt("topic", PermSub, "consumerGroup")}
	return map[int32]rule{
		// Produce.
		remoting.SendMessage:        v1send,
		remoting.SendReplyMessage:   v1send,
		remoting.SendMessageV2:      v2send,
		remoting.SendBatchMessage:   v2send,
		remoting.SendReplyMessageV2: v2send,
		// END_TRANSACTION names no topic in ACL 1.0 clients' headers.
		remoting.EndTransaction: signedOnly,

		// Consume.
		remoting.PullMessage:             topicAndGroupSub,
		remoting.LitePullMessage:         topicAndGroupSub,
		remoting.QueryConsumerOffset:     topicAndGroupSub,
		remoting.UpdateConsumerOffset:    topicAndGroupSub,
		remoting.ConsumerSendMsgBack:     {needs: fromExt("", 0, "group")},
		remoting.HeartBeat:               {needs: heartbeatNeeds},
		remoting.UnregisterClient:        groupSub,
		remoting.GetConsumerListByGroup:  groupSub,
		remoting.LockBatchMQ:             {needs: lockNeeds},
		remoting.UnlockBatchMQ:           {needs: lockNeeds},
		remoting.QueryMessage:            topicSub,
		remoting.SearchOffsetByTimestamp: topicSub,
		remoting.GetMaxOffset:            topicSub,
		remoting.GetMinOffset:            topicSub,
		remoting.GetEarliestMsgStoretime: topicSub,
		// By offset id: any message of any topic, which the check cannot know
		// before the lookup (RocketMQ lets any account do it; we do not).
		remoting.ViewMessageByID:   adminOnly,
		remoting.CheckClientConfig: signedOnly,

		// Read-only metadata clients need.
		remoting.GetRouteInfoByTopic:           signedOnly,
		remoting.GetBrokerClusterInfo:          signedOnly,
		remoting.GetAllTopicListFromNameserver: signedOnly,
		remoting.GetTopicsByCluster:            signedOnly,
		remoting.GetKVConfig:                   signedOnly,
		remoting.GetBrokerRuntimeInfo:          signedOnly,
		remoting.RaftStatus:                    signedOnly,

		// Codes a broker sends to clients; a server receiving one serves
		// nobody legitimate, except admin tools relaying.
		remoting.CheckTransactionState:       adminOnly,
		remoting.NotifyConsumerIdsChanged:    adminOnly,
		remoting.ResetConsumerClientOffset:   adminOnly,
		remoting.GetConsumerStatusFromClient: adminOnly,
		remoting.GetConsumerRunningInfo:      adminOnly,
		remoting.ConsumeMessageDirectly:      adminOnly,
		remoting.PushReplyMessageToClient:    adminOnly,

		// Admin and cluster-internal: change topics, groups, routes, config,
		// leadership, or dump whole tables.
		remoting.UpdateAndCreateTopic:          adminOnly,
		remoting.DeleteTopicInBroker:           adminOnly,
		remoting.DeleteTopicInNamesrv:          adminOnly,
		remoting.WipeWritePermOfBroker:         adminOnly,
		remoting.AddWritePermOfBroker:          adminOnly,
		remoting.PutKVConfig:                   adminOnly,
		remoting.DeleteKVConfig:                adminOnly,
		remoting.GetKVListByNamespace:          adminOnly,
		remoting.GetAllTopicConfig:             adminOnly,
		remoting.GetAllSubscriptionGroupConfig: adminOnly,
		remoting.RegisterBroker:                adminOnly,
		remoting.UnregisterBroker:              adminOnly,
		remoting.QueryDataVersion:              adminOnly,
		remoting.BrokerHeartbeat:               adminOnly,
		remoting.RaftTransferLeader:            adminOnly,
		codeUpdateBrokerConfig:                 adminOnly,
		codeGetBrokerConfig:                    adminOnly,
		codeUpdateAndCreateSubGroup:            adminOnly,
		codeDeleteSubGroup:                     adminOnly,
		codeInvokeBrokerToResetOffset:          adminOnly,
		codeInvokeBrokerToGetConsumerSt:        adminOnly,
		codeUpdateNamesrvConfig:                adminOnly,
		codeGetNamesrvConfig:                   adminOnly,
	}
}
