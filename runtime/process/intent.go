package process

import (
	"fmt"
	"strconv"
	"strings"
)

// intent is the offset range of a batch that is being written but not yet committed. It
// is stored as the metadata of the partition's committed offset before the batch is
// written, and cleared by the commit after. A processor that takes over the partition
// after a crash (or a rebalance) between the two reads it back and cuts its first batch
// at exactly the same offsets: the lake key names the offset range, so the replay then
// overwrites the objects already written instead of adding overlapping ones.
type intent struct {
	first, last int64
}

// intentPrefix marks commit metadata written by this processor. Other metadata (the
// client's default is its member id) is not an intent.
const intentPrefix = "shoal-batch/v1:"

// writtenMetadata is the metadata of the commit after a batch is written: every record
// before the committed offset is stored, and none from it on. A processor that takes
// over a partition committed with anything else (an offset set back by hand, a group
// deleted, an older release) cannot tell what is stored, and looks up every event of its
// batches until it passes the end of the log it found.
const writtenMetadata = "shoal-written/v1"

// lookToEnd is partition.storedThrough before the first fetch says where the log ends.
const lookToEnd = -2

func (in intent) metadata() string {
	return intentPrefix + strconv.FormatInt(in.first, 10) + "-" + strconv.FormatInt(in.last, 10)
}

// parseIntent reads commit metadata. ok is false for metadata that is no intent.
func parseIntent(metadata string) (intent, bool, error) {
	rest, ok := strings.CutPrefix(metadata, intentPrefix)
	if !ok {
		return intent{}, false, nil
	}
	a, b, ok := strings.Cut(rest, "-")
	if !ok {
		return intent{}, false, fmt.Errorf("commit metadata %q: want %s<first>-<last>", metadata, intentPrefix)
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return intent{}, false, fmt.Errorf("commit metadata %q: want %s<first>-<last> with 0 <= first <= last", metadata, intentPrefix)
	}
	return intent{first: first, last: last}, true, nil
}
