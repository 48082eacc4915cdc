package broker

import "github.com/raftmq/raftmq/commitlog/consumequeue"

type consumeEntry = consumequeue.Entry
