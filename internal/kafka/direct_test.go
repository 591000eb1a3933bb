package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/internal/testbackends"
)

func testSpec(name string, partitions int32) TopicSpec {
	return TopicSpec{Name: name, Tenant: "acme", Partitions: partitions, Replicas: 1, Config: map[string]string{
		ConfigRetentionMs: "86400000", ConfigCleanupPolicy: "delete", ConfigMinInsyncReplicas: "1",
	}}
}

func newDirect(t *testing.T, brokers []string) *Direct {
	t.Helper()
	d, err := NewDirect(Config{
		Brokers:        brokers,
		DialTimeout:    metav1.Duration{Duration: 500 * time.Millisecond},
		RequestTimeout: metav1.Duration{Duration: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// adminClient is a separate admin client that plays the human changing things by hand.
func adminClient(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describing configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}

func partitionCount(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	topics, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if topics[topic].Err != nil {
		t.Fatalf("listing %s: %v", topic, topics[topic].Err)
	}
	return len(topics[topic].Partitions)
}

func ensure(t *testing.T, p Provisioner, spec TopicSpec) TopicStatus {
	t.Helper()
	st, err := p.Ensure(context.Background(), spec)
	if err != nil {
		t.Fatalf("Ensure(%s, %d partitions): %v", spec.Name, spec.Partitions, err)
	}
	return st
}

func TestDirectLifecycle(t *testing.T) {
	kafka := testbackends.StartKafka(t)
	d := newDirect(t, kafka.Brokers)
	adm := adminClient(t, kafka.Brokers)
	ctx := context.Background()
	const topic = "shoal-events-acme"

	// Each step runs in order on the same topic; a failed step stops the sequence.
	steps := []struct {
		name  string
		setup func(t *testing.T)
		spec  TopicSpec
		want  TopicStatus
		// messageHas is checked with strings.Contains; "" wants an empty message.
		messageHas string
		check      func(t *testing.T)
	}{
		{
			name: "create",
			spec: testSpec(topic, 3),
			want: TopicStatus{Name: topic, Partitions: 3, Ready: true},
			check: func(t *testing.T) {
				if got := topicConfig(t, adm, topic, ConfigRetentionMs); got != "86400000" {
					t.Errorf("retention.ms = %q, want 86400000", got)
				}
			},
		},
		{name: "second ensure changes nothing", spec: testSpec(topic, 3), want: TopicStatus{Name: topic, Partitions: 3, Ready: true}},
		{
			name:  "partitions grow 3 to 6",
			spec:  testSpec(topic, 6),
			want:  TopicStatus{Name: topic, Partitions: 6, Ready: true},
			check: func(t *testing.T) { assertPartitions(t, adm, topic, 6) },
		},
		{
			name:       "decrease is refused and reported",
			spec:       testSpec(topic, 4),
			want:       TopicStatus{Name: topic, Partitions: 6, Ready: true},
			messageHas: "cannot remove partitions, so it keeps 6",
			check:      func(t *testing.T) { assertPartitions(t, adm, topic, 6) },
		},
		{
			name: "config drift is repaired",
			setup: func(t *testing.T) {
				v := "1000"
				resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: ConfigRetentionMs, Value: &v}}, topic)
				if err != nil || resp[0].Err != nil {
					t.Fatalf("altering retention.ms by hand: %v %v", err, resp)
				}
				if got := topicConfig(t, adm, topic, ConfigRetentionMs); got != "1000" {
					t.Fatalf("retention.ms altered by hand reads %q", got)
				}
			},
			spec: testSpec(topic, 6),
			want: TopicStatus{Name: topic, Partitions: 6, Ready: true},
			check: func(t *testing.T) {
				if got := topicConfig(t, adm, topic, ConfigRetentionMs); got != "86400000" {
					t.Errorf("retention.ms = %q after Ensure, want 86400000", got)
				}
			},
		},
		{
			name: "topic deleted by hand comes back",
			setup: func(t *testing.T) {
				if _, err := adm.DeleteTopic(ctx, topic); err != nil {
					t.Fatal(err)
				}
				if _, found, err := d.Describe(ctx, topic); err != nil || found {
					t.Fatalf("after deleting by hand Describe found=%v err=%v", found, err)
				}
			},
			spec:  testSpec(topic, 6),
			want:  TopicStatus{Name: topic, Partitions: 6, Ready: true},
			check: func(t *testing.T) { assertPartitions(t, adm, topic, 6) },
		},
	}
	for _, step := range steps {
		ok := t.Run(step.name, func(t *testing.T) {
			if step.setup != nil {
				step.setup(t)
			}
			got := ensure(t, d, step.spec)
			msg := got.Message
			got.Message = ""
			if got != step.want {
				t.Errorf("Ensure = %+v, want %+v", got, step.want)
			}
			if step.messageHas == "" && msg != "" || !strings.Contains(msg, step.messageHas) {
				t.Errorf("message %q, want it to contain %q", msg, step.messageHas)
			}
			if step.check != nil {
				step.check(t)
			}
			desc, found, err := d.Describe(ctx, topic)
			if err != nil || !found || desc.Partitions != step.want.Partitions || !desc.Ready {
				t.Errorf("Describe = %+v found=%v err=%v", desc, found, err)
			}
		})
		if !ok {
			t.FailNow()
		}
	}

	t.Run("delete, then describe reports missing, delete again is fine", func(t *testing.T) {
		for i := range 2 {
			if err := d.Delete(ctx, topic); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if st, found, err := d.Describe(ctx, topic); err != nil || found {
			t.Errorf("Describe after Delete = %+v found=%v err=%v, want missing", st, found, err)
		}
	})
}

func assertPartitions(t *testing.T, adm *kadm.Client, topic string, want int) {
	t.Helper()
	if got := partitionCount(t, adm, topic); got != want {
		t.Errorf("topic has %d partitions, want %d", got, want)
	}
}

func TestDirectBrokerDown(t *testing.T) {
	kafka := testbackends.StartKafka(t)
	d := newDirect(t, kafka.Brokers)
	ctx := context.Background()
	const topic = "shoal-events-outage"
	ensure(t, d, testSpec(topic, 2))

	kafka.Stop()
	start := time.Now()
	_, err := d.Ensure(ctx, testSpec(topic, 2))
	elapsed := time.Since(start)
	t.Logf("broker down: Ensure failed after %s: %v", elapsed.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("Ensure with the broker down succeeded")
	}
	if !IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false, want true", err)
	}
	for _, want := range []string{topic, kafka.Brokers[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// RequestTimeout is 2s; allow for scheduling on a busy machine.
	if elapsed > 5*time.Second {
		t.Errorf("Ensure took %s with the broker down, want it bounded by the 2s request timeout", elapsed)
	}
	if _, _, err := d.Describe(ctx, topic); !IsUnavailable(err) {
		t.Errorf("Describe with the broker down: IsUnavailable(%v) = false", err)
	}

	kafka.Start()
	// The client reconnects by itself once the broker is back; the topic kept its state.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := d.Ensure(ctx, testSpec(topic, 2))
		if err == nil {
			if st.Partitions != 2 || !st.Ready {
				t.Errorf("Ensure after recovery = %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ensure still failing 10s after the broker came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDirectRefusesInvalidConfig(t *testing.T) {
	if _, err := NewDirect(Config{}); err == nil || !strings.Contains(err.Error(), "brokers") {
		t.Errorf("NewDirect without brokers: %v, want an error naming brokers", err)
	}
}
