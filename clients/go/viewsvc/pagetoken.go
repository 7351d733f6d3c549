package viewsvc

import (
	"encoding/base64"
	"encoding/binary"
	"sort"

	"golang.org/x/crypto/blake2b"
)

// PageToken is the token that resumes a scan of table (with these bounds and partitions)
// after lastKey, as the servers issue and read it: base64url without padding of version 1,
// an 8-byte BLAKE2b of the table and the scan, and the key. The client builds one to resume a
// stream that broke midway.
func PageToken(table string, start, end, prefix []byte, partitions []int32, lastKey []byte) string {
	scan, _ := blake2b.New(16, nil)
	for _, part := range [][]byte{start, end, prefix} {
		scan.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		scan.Write(part)
	}
	chosen := uniqueSorted(partitions)
	scan.Write(binary.BigEndian.AppendUint32(nil, uint32(len(chosen))))
	for _, p := range chosen {
		scan.Write(binary.BigEndian.AppendUint32(nil, uint32(p)))
	}
	whole, _ := blake2b.New(8, nil)
	whole.Write(binary.BigEndian.AppendUint32(nil, uint32(len(table))))
	whole.Write([]byte(table))
	whole.Write(scan.Sum(nil))
	raw := append([]byte{1}, whole.Sum(nil)...)
	return base64.RawURLEncoding.EncodeToString(append(raw, lastKey...))
}

func uniqueSorted(partitions []int32) []int32 {
	seen := map[int32]bool{}
	var chosen []int32
	for _, p := range partitions {
		if !seen[p] {
			seen[p] = true
			chosen = append(chosen, p)
		}
	}
	sort.Slice(chosen, func(i, j int) bool { return chosen[i] < chosen[j] })
	return chosen
}
