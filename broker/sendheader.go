package broker

import (
	"fmt"

	"github.com/raftmq/raftmq/remoting"
)

// sendHeader is the header of SEND_MESSAGE (10, long keys) and of
// SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE (310/320, one-letter keys).
type sendHeader struct {
	ProducerGroup         string
	Topic                 string
	DefaultTopic          string
	DefaultTopicQueueNums int32
	QueueID               int32
	SysFlag               int32
	BornTimestamp         int64
	Flag                  int32
	Properties            string
	ReconsumeTimes        int32
	MaxReconsumeTimes     int32
	HasMaxReconsumeTimes  bool
	Batch                 bool
}

// sendKeys maps the field names of the V1 header onto the one-letter V2 keys.
var sendKeysV1 = [...]string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
	"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "maxReconsumeTimes", "batch"}
var sendKeysV2 = [...]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m"}

// decodeSendHeader reads the send header of req in the style its code uses.
// Missing required fields and unparsable numbers are errors.
func decodeSendHeader(req *remoting.Command) (sendHeader, error) {
	keys := sendKeysV1
	if req.Code == remoting.SendMessageV2 || req.Code == remoting.SendBatchMessage || req.Code == remoting.SendReplyMessageV2 {
		keys = sendKeysV2
	}
	var h sendHeader
	var err error
	var ok bool
	h.ProducerGroup = req.Ext(keys[0])
	h.Topic = req.Ext(keys[1])
	if h.Topic == "" {
		return h, fmt.Errorf("send header: topic is missing")
	}
	h.DefaultTopic = req.Ext(keys[2])
	if h.DefaultTopicQueueNums, _, err = req.ExtInt32(keys[3]); err != nil {
		return h, err
	}
	if h.QueueID, ok, err = req.ExtInt32(keys[4]); err != nil {
		return h, err
	} else if !ok {
		return h, fmt.Errorf("send header: queueId is missing")
	}
	if h.SysFlag, _, err = req.ExtInt32(keys[5]); err != nil {
		return h, err
	}
	if h.BornTimestamp, _, err = req.ExtInt64(keys[6]); err != nil {
		return h, err
	}
	if h.Flag, _, err = req.ExtInt32(keys[7]); err != nil {
		return h, err
	}
	h.Properties = req.Ext(keys[8])
	if h.ReconsumeTimes, _, err = req.ExtInt32(keys[9]); err != nil {
		return h, err
	}
	if h.MaxReconsumeTimes, h.HasMaxReconsumeTimes, err = req.ExtInt32(keys[10]); err != nil {
		return h, err
	}
	if h.Batch, _, err = req.ExtBool(keys[11]); err != nil {
		return h, err
	}
	if req.Code == remoting.SendBatchMessage {
		h.Batch = true
	}
	return h, nil
}
