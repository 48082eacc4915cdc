// Package bench owns `raftmq bench`: load generators that measure a broker
// group through the project's own remoting client, so that the broker and not
// a client library is what the figures describe.
//
//   - Producers (Produce): N connections, M senders spread over them, each
//     sending 1 message per request to (topic, queue) pairs in turn. Sync mode
//     waits for every answer; async mode keeps at most Window requests in
//     flight per connection (a sliding window, not burst-then-wait).
//   - Consumers (Consume): drain the backlog present when the run starts,
//     one puller per queue, each pulling large batches back to back.
//
// Invariants it keeps:
//
//   - Sends go to the address registered as brokerId 0 of a group's plain
//     brokerName (its leader), never to a write alias `name@member`, unless
//     Config.ViaAliases asks for the aliases (which may add a forwarding hop).
//   - Latency is measured from just before a request is handed to the client
//     to its answer, into HDR histograms (github.com/HdrHistogram/hdrhistogram-go,
//     microsecond resolution, 3 significant digits) that are merged, never
//     averaged, so reported percentiles are exact to the histogram's precision.
//   - Every request ends in exactly one outcome: a success, or one error counted
//     by its response code or transport failure.
//   - A run stops at its message count or duration, or when ctx ends; in-flight
//     requests are awaited (bounded by the request timeout) before the summary.
package bench
