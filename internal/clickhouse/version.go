package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version (year.month.patch for releases since 2019; the
// 18.x and 19.x lines used the same shape).
type Version struct {
	Major, Minor, Patch int
}

// ParseVersion reads what SELECT version() returns, such as "18.16.1" or "24.8.4.13".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("ClickHouse version %q: want major.minor[.patch...]", s)
	}
	var nums [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("ClickHouse version %q: part %q is not a number", s, parts[i])
		}
		nums[i] = n
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	if v.Major != major {
		return v.Major > major
	}
	return v.Minor >= minor
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Features are what the SQL may use on a server version.
type Features struct {
	// LowCardinality(String) without the experimental setting: production-ready in 19.3
	// (the setting allow_experimental_low_cardinality_type was removed then).
	LowCardinality bool
	// TTL on MergeTree tables: 19.6.
	TTL bool
	// SQLUsers: CREATE USER, ALTER USER, GRANT with users persisted on disk: 20.4. Older
	// servers only know users from the users.xml configuration (and users.d).
	SQLUsers bool
}

// FeaturesOf returns what the SQL may use on version v.
func FeaturesOf(v Version) Features {
	return Features{
		LowCardinality: v.AtLeast(19, 3),
		TTL:            v.AtLeast(19, 6),
		SQLUsers:       v.AtLeast(20, 4),
	}
}
