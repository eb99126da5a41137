package tblog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// An event file is a sequence of TFRecords:
//
//	uint64 length (little endian)
//	uint32 masked CRC32C of the 8 length bytes
//	length bytes of data (one serialized Event)
//	uint32 masked CRC32C of the data
//
// TensorBoard's readers check both checksums and drop a file at the first
// mismatch, so the framing must be exact.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskDelta is TensorFlow's CRC mask constant (tensorflow/core/lib/hash/crc32c.h).
const maskDelta = 0xa282ead8

// maskedCRC is the CRC32C of data, rotated right by 15 bits and offset by
// maskDelta. TensorFlow masks stored checksums because a CRC over data that
// itself embeds CRCs is weak.
func maskedCRC(data []byte) uint32 {
	c := crc32.Checksum(data, castagnoli)
	return ((c >> 15) | (c << 17)) + maskDelta
}

// appendRecord appends data, framed as one TFRecord, to buf.
func appendRecord(buf, data []byte) []byte {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], maskedCRC(head[:8]))
	buf = append(buf, head[:]...)
	buf = append(buf, data...)
	return binary.LittleEndian.AppendUint32(buf, maskedCRC(data))
}

// ErrTruncated means an event file ends inside a record: its writer was
// killed mid-write or is still writing. The records before it are intact.
var ErrTruncated = errors.New("truncated record")

// readRecord reads one TFRecord from r, checking both checksums. It returns
// io.EOF at a clean end of file and ErrTruncated inside a record.
func readRecord(r io.Reader) ([]byte, error) {
	var head [12]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, io.EOF
		}
		return nil, ErrTruncated
	}
	if got, want := binary.LittleEndian.Uint32(head[8:]), maskedCRC(head[:8]); got != want {
		return nil, fmt.Errorf("record length checksum %#08x, want %#08x", got, want)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	const maxRecord = 1 << 30 // no event mnistgan writes comes near this
	if n > maxRecord {
		return nil, fmt.Errorf("record of %d bytes is implausibly large", n)
	}
	data := make([]byte, n+4)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, ErrTruncated
	}
	if got, want := binary.LittleEndian.Uint32(data[n:]), maskedCRC(data[:n]); got != want {
		return nil, fmt.Errorf("record data checksum %#08x, want %#08x", got, want)
	}
	return data[:n], nil
}
