package failover

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Environment knobs shared by the compose and process-cluster runs (make failover-bench
// sets them from its own variables).
const (
	EnvLeaderKills   = "RAFTMQ_FAILOVER_LEADER_KILLS"
	EnvFollowerKills = "RAFTMQ_FAILOVER_FOLLOWER_KILLS"
	EnvPauses        = "RAFTMQ_FAILOVER_FOLLOWER_PAUSES"
	EnvTransfers     = "RAFTMQ_FAILOVER_TRANSFERS"
	EnvRolling       = "RAFTMQ_FAILOVER_ROLLING" // 1: rolling restart of every member
	EnvSyncWorkers   = "RAFTMQ_FAILOVER_SYNC_WORKERS"
	EnvIntervalMS    = "RAFTMQ_FAILOVER_INTERVAL_MS"
	EnvJSON          = "RAFTMQ_FAILOVER_JSON" // where to write the JSON summary
)

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number >= 0", name, v)
	}
	return n, nil
}

// PlanFromEnv overrides def with the environment's knobs.
func PlanFromEnv(def Plan) (Plan, error) {
	p := def
	var err error
	if p.LeaderKills, err = envInt(EnvLeaderKills, def.LeaderKills); err != nil {
		return p, err
	}
	if p.FollowerKills, err = envInt(EnvFollowerKills, def.FollowerKills); err != nil {
		return p, err
	}
	if p.FollowerPauses, err = envInt(EnvPauses, def.FollowerPauses); err != nil {
		return p, err
	}
	if p.Transfers, err = envInt(EnvTransfers, def.Transfers); err != nil {
		return p, err
	}
	rolling := 0
	if def.Rolling {
		rolling = 1
	}
	if rolling, err = envInt(EnvRolling, rolling); err != nil {
		return p, err
	}
	p.Rolling = rolling > 0
	return p, nil
}

// WorkloadFromEnv overrides the load's knobs from the environment.
func WorkloadFromEnv(c WorkloadConfig) (WorkloadConfig, error) {
	var err error
	if c.SyncWorkers, err = envInt(EnvSyncWorkers, c.SyncWorkers); err != nil {
		return c, err
	}
	ms, err := envInt(EnvIntervalMS, int(c.Interval/time.Millisecond))
	if err != nil {
		return c, err
	}
	c.Interval = time.Duration(ms) * time.Millisecond
	return c, nil
}
