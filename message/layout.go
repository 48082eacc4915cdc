package message

// Byte positions of the fixed part of a stored record (docs/protocol.md §3.1).
// Fields after the born host move when a host is IPv6; use the *Pos funcs.
const (
	PosTotalSize      = 0
	PosMagic          = 4
	PosBodyCRC        = 8
	PosQueueID        = 12
	PosFlag           = 16
	PosQueueOffset    = 20
	PosPhysicalOffset = 28
	PosSysFlag        = 36
	PosBornTimestamp  = 40
	PosBornHost       = 48
)

// Magic codes of a stored record (RocketMQ MessageDecoder).
const (
	// MagicCodeV1 marks the layout with a 1-byte topic length (-626843481).
	MagicCodeV1 uint32 = 0xDAA320A7
	// MagicCodeV2 marks the layout with a 2-byte topic length (-626843477).
	MagicCodeV2 uint32 = 0xDAA320AB
	// BlankMagicCode marks end-of-file filler in Java CommitLog files.
	BlankMagicCode uint32 = 0xCBD43194
)

// SysFlag bits of a message (docs/protocol.md §3.2).
const (
	SysFlagCompressed = 0x1
	SysFlagMultiTags  = 0x2

	TransactionNotType      = 0x0
	TransactionPreparedType = 0x4
	TransactionCommitType   = 0x8
	TransactionRollbackType = 0xC
	// TransactionTypeMask selects the transaction type bits.
	TransactionTypeMask = 0xC

	SysFlagBornHostV6  = 0x10
	SysFlagStoreHostV6 = 0x20
	SysFlagNeedUnwrap  = 0x40
	SysFlagInnerBatch  = 0x80

	// CompressionTypeMask selects the 5.x compression type bits (0 or 3 =
	// zlib, 1 = lz4, 2 = zstd).
	CompressionTypeMask = 0x700
)

// Size limits.
const (
	// MaxTopicLengthV1 is the longest topic (in bytes) the V1 layout holds
	// and the longest ValidateTopic accepts.
	MaxTopicLengthV1 = 127
	// MaxTopicLength is the longest topic the V2 layout holds.
	MaxTopicLength = 32767
	// MaxGroupLength is the longest group name ValidateGroup accepts.
	MaxGroupLength = 255
	// MaxPropertiesLength is the longest encoded properties string (int16).
	MaxPropertiesLength = 32767
	// DefaultMaxMessageSize is RocketMQ's default maxMessageSize (4 MiB), the
	// body limit brokers apply to sends. AppendRecord itself only requires
	// the record to fit in an int32 size field.
	DefaultMaxMessageSize = 4 << 20

	// MinRecordSize is the size of the smallest stored record: a V1 record with IPv4 hosts, an empty
	// body, an empty topic and no properties.
	MinRecordSize = 91
)

// TransactionType returns the transaction type bits of sysFlag.
func TransactionType(sysFlag int32) int32 { return sysFlag & TransactionTypeMask }

// SetTransactionType returns sysFlag with its transaction type replaced by t.
func SetTransactionType(sysFlag, t int32) int32 {
	return sysFlag&^TransactionTypeMask | t&TransactionTypeMask
}

func hostFieldSize(v6 bool) int {
	if v6 {
		return 20
	}
	return 8
}

// StoreTimestampPos is the position of STORETIMESTAMP for a record with sysFlag.
func StoreTimestampPos(sysFlag int32) int {
	return PosBornHost + hostFieldSize(sysFlag&SysFlagBornHostV6 != 0)
}

// StoreHostPos is the position of STOREHOST for a record with sysFlag.
func StoreHostPos(sysFlag int32) int { return StoreTimestampPos(sysFlag) + 8 }

// ReconsumeTimesPos is the position of RECONSUMETIMES for a record with sysFlag.
func ReconsumeTimesPos(sysFlag int32) int {
	return StoreHostPos(sysFlag) + hostFieldSize(sysFlag&SysFlagStoreHostV6 != 0)
}

// PreparedTransactionOffsetPos is the position of PREPARED_TRANSACTION_OFFSET
// for a record with sysFlag.
func PreparedTransactionOffsetPos(sysFlag int32) int { return ReconsumeTimesPos(sysFlag) + 4 }

// BodySizePos is the position of BODYLEN for a record with sysFlag; the body
// follows it.
func BodySizePos(sysFlag int32) int { return PreparedTransactionOffsetPos(sysFlag) + 8 }
