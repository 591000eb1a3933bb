package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func TestPassedTime(t *testing.T) {
	k := testbackends.StartKafka(t)
	ctx := context.Background()
	adm := adminClient(t, k.Brokers)
	const topic, group = "shoal-events-acme", "shoal-process"
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	progress, err := NewConsumerProgress(Config{
		Brokers:        k.Brokers,
		DialTimeout:    metav1.Duration{Duration: 500 * time.Millisecond},
		RequestTimeout: metav1.Duration{Duration: 3 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(progress.Close)

	cutoff := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	check := func(want Progress) {
		t.Helper()
		got, err := progress.PassedTime(ctx, group, topic, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if got.Done != want.Done || got.Lag != want.Lag || len(got.Behind) != len(want.Behind) {
			t.Fatalf("progress %+v, want %+v", got, want)
		}
		for i := range want.Behind {
			if got.Behind[i] != want.Behind[i] {
				t.Fatalf("progress %+v, want %+v", got, want)
			}
		}
	}
	// An empty topic has nothing to wait for.
	check(Progress{Done: true})

	// Partition 0: 3 records before the cutoff, 2 after; partition 1: 1 before.
	producer, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var records []*kgo.Record
	for i, at := range []time.Duration{-3 * time.Minute, -2 * time.Minute, -time.Minute, time.Minute, 2 * time.Minute} {
		records = append(records, &kgo.Record{Topic: topic, Partition: 0, Value: []byte{byte(i)}, Timestamp: cutoff.Add(at)})
	}
	records = append(records, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("x"), Timestamp: cutoff.Add(-time.Second)})
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Nothing committed: partition 0 must reach offset 3, partition 1 its end (1).
	check(Progress{Lag: 4, Behind: []int32{0, 1}})

	commit := func(p0, p1 int64) {
		t.Helper()
		offsets := kadm.Offsets{}
		offsets.AddOffset(topic, 0, p0, -1)
		if p1 >= 0 {
			offsets.AddOffset(topic, 1, p1, -1)
		}
		resp, err := adm.CommitOffsets(ctx, group, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(2, -1)
	check(Progress{Lag: 2, Behind: []int32{0, 1}})
	commit(3, 0)
	check(Progress{Lag: 1, Behind: []int32{1}})
	// Past the first record after the cutoff is fine; the records after it do not count.
	commit(4, 1)
	check(Progress{Done: true})

	// A topic that does not exist is an error, not "caught up".
	_, err = progress.PassedTime(ctx, group, "shoal-events-nobody", cutoff)
	var kerr *Error
	if !errors.As(err, &kerr) {
		t.Fatalf("missing topic: %v", err)
	}
}
