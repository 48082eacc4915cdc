// Package indexfile owns RocketMQ IndexFiles (PROTOCOL.md §6.4): a hash index
// from "topic#key" to CommitLog physical offsets, used by QUERY_MESSAGE.
package indexfile

import "github.com/hashicorp/go-hclog"

// Options configures a Service.
type Options struct {
	Dir         string // storePathRootDir/index
	SlotNum     int    // 5_000_000
	MaxIndexNum int    // 20_000_000
	Logger      hclog.Logger
}

// Service owns the index files of a broker.
type Service struct{}

func Open(opts Options) (*Service, error)                                       { return &Service{}, nil }
func (s *Service) Put(key string, physOffset int64, storeTimestamp int64) error { return nil }
func (s *Service) Query(key string, maxNum int, begin, end int64) ([]int64, error) {
	return nil, nil
}
func (s *Service) TruncateFrom(physEnd int64) error { return nil }
func (s *Service) DeleteBelow(minPhys int64) error  { return nil }
func (s *Service) LastPhysOffset() int64            { return 0 }
func (s *Service) Flush() error                     { return nil }
func (s *Service) Close() error                     { return nil }
