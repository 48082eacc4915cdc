// Package message owns the RocketMQ message model and its byte layouts: the
// stored CommitLog record (the element of pull, query and view-message bodies),
// the properties string, SEND_BATCH_MESSAGE bodies, offsetMsgId and UNIQ_KEY
// message ids, and Java String.hashCode tag codes. docs/protocol.md §3 is the
// specification; the official Go client's primitive.DecodeMessage is the
// reader every encoding here is checked against.
//
// Two ways to read a record:
//
//   - DecodeRecord / DecodeRecords build an Ext (allocating, copying), for
//     code that wants a message value.
//   - Record is a zero-copy view with bounds-checked accessors and in-place
//     setters, for the hot paths (dispatch, offset patching, pull filtering).
//
// Choices that differ from, or sharpen, RocketMQ (docs/protocol.md §3):
//
//   - The V2 magic is 0xDAA320AB (-626843477), the value in RocketMQ's
//     MessageDecoder.MESSAGE_MAGIC_CODE_V2 and in docs/protocol.md §3.1.
//   - AppendRecord writes the V1 layout (1-byte topic length) whenever the
//     topic fits in 127 bytes, which is all topics ValidateTopic accepts. A
//     longer topic (a %RETRY%/%DLQ% name built from a long group) is written
//     in the V2 layout as the Java broker does; the Go client cannot read such
//     records, so callers that can refuse long names should.
//   - IPv6 hosts do not change the magic: they set the BORNHOST/STOREHOST v6
//     sysflag bits and widen the host fields, as RocketMQ does.
//   - Properties are decoded with Java's rules (split on 0x02, key up to the
//     first 0x01, empty key dropped) except that an empty value is kept, so
//     that what AppendRecord writes decodes back identically. Keys and values
//     containing 0x01 or 0x02 are refused on encode.
//   - A SEND_BATCH_MESSAGE body is checked against BatchLimits (whole-body
//     size, as RocketMQ checks maxMessageSize, and item count) and every
//     item's framing is walked before any message is allocated, so hostile
//     batches are refused (ErrBatchTooLarge) at no per-item cost.
//   - Decoders copy what they return (bodies are not aliased into the input),
//     so an Ext stays valid after the mmap'd segment it came from is released.
package message
