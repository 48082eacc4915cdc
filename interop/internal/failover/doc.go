// Package failover measures what users of the official RocketMQ Go client see when a
// raftmq broker group loses or changes its leader: a trial runner that keeps SendSync,
// batch, oneway and async producers and a push consumer busy against one three-member
// group while it kills, stops, restarts and transfers members of a Cluster (docker
// compose or child processes), then analyses the recorded log into per-trial and
// summary figures (ack gaps, failed sends, duplicates, consumer gaps, rejoin times),
// a table, a JSON file and a check against issue 10's targets.
//
// Invariants: every send the workload begins is recorded before it is issued and
// finished exactly once (async: by its callback); every body is unique in a run, so a
// body consumed from two stored copies is a retry stored twice and a copy consumed
// twice is a redelivery. Figures are computed from the log after the run, never from
// timers during it; only sends begun after an action took effect measure the
// recovery (a send in flight at a kill waits out its own timeout).
package failover
