package process

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/events"
)

func TestFirstOfEach(t *testing.T) {
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ev := func(id, typ string, ts time.Time) events.Event {
		return events.Event{EventID: id, EventType: typ, Timestamp: ts}
	}
	assignedEv := func(id string) events.Event {
		e := ev(id, "t", day)
		e.IDAssigned = true
		return e
	}
	for _, tc := range []struct {
		name string
		in   []events.Event
		all  bool
		want []string // event_type/event_id kept, in order
	}{
		{"empty", nil, true, nil},
		{"distinct", []events.Event{ev("a", "t", day), ev("b", "t", day)}, true, []string{"t/a", "t/b"}},
		{"resent in the batch", []events.Event{ev("a", "t", day), ev("b", "t", day), ev("a", "t", day.Add(time.Hour))}, true, []string{"t/a", "t/b"}},
		{"same id, other type", []events.Event{ev("a", "t", day), ev("a", "u", day)}, true, []string{"t/a", "u/a"}},
		{"same id, other day", []events.Event{ev("a", "t", day), ev("a", "t", day.Add(24*time.Hour))}, true, []string{"t/a", "t/a"}},
		{"client ids compared", []events.Event{ev("a", "t", day), assignedEv("b"), ev("a", "t", day)}, false, []string{"t/a", "t/b"}},
		{"assigned ids not compared", []events.Event{assignedEv("a"), assignedEv("a")}, false, []string{"t/a", "t/a"}},
		{"assigned ids compared in a replay", []events.Event{assignedEv("a"), assignedEv("a")}, true, []string{"t/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range firstOfEach(tc.in, tc.all) {
				got = append(got, e.EventType+"/"+e.EventID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("kept %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestStoredSQLRefusesBadDatabase(t *testing.T) {
	if _, err := storedSQL("x`; DROP TABLE y"); err == nil {
		t.Fatal("a database name with a backtick was accepted")
	}
}

// TestInsertEventsOnce runs the lookup against the real ClickHouse: a batch inserted
// again, with new events mixed in, adds only the new ones, so the table has no copy to
// collapse even before merges.
func TestInsertEventsOnce(t *testing.T) {
	e := backends
	tenant := "once"
	e.tenant(t, tenant, "Standard", 1)
	db := naming.Database(tenant)
	wh, err := OpenClickHouse(context.Background(), e.clickHouseConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wh.Close() }()
	ctx := context.Background()

	evs := testEvents(tenant, 3000)
	first := append(append([]events.Event{}, evs[:2000]...), evs[:10]...) // ten resent in the batch
	n, err := wh.InsertEvents(ctx, db, first, false)
	if err != nil || n != 2000 {
		t.Fatalf("first insert: %d rows, %v; want 2000", n, err)
	}
	// The same event on another day is another row of the table, so it is inserted.
	other := evs[0]
	other.Timestamp = other.Timestamp.Add(-48 * time.Hour)
	n, err = wh.InsertEvents(ctx, db, append(append([]events.Event{}, evs[1000:]...), other), false)
	if err != nil || n != 1001 {
		t.Fatalf("second insert: %d rows, %v; want the 1000 new ones and the other day's copy", n, err)
	}
	if _, unique, raw := e.counts(t, tenant); raw != 3001 || unique != 3000 {
		t.Errorf("count %d, uniqExact(event_id) %d; want 3001 rows of 3000 ids", raw, unique)
	}
	if n, err = wh.InsertEvents(ctx, db, evs, false); err != nil || n != 0 {
		t.Errorf("third insert of stored events: %d rows, %v; want none", n, err)
	}
}
