package testbackends

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka broker (kfake) speaking the real wire protocol on one
// loopback port. Its state lives in a data dir, so Stop and Start simulate an outage:
// clients see connection errors while it is down and find their topics again after.
type Kafka struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string

	t       testing.TB
	port    int
	dataDir string

	mu      sync.Mutex
	cluster *kfake.Cluster
}

// StartKafka starts a one-broker kfake cluster on a free port and stops it when the test
// ends.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	k := &Kafka{t: t, port: FreePort(t), dataDir: t.TempDir()}
	k.Brokers = []string{Addr(k.port)}
	k.Start()
	t.Cleanup(k.Stop)
	return k
}

// Start (re)starts the broker on the same port with the state it had when stopped. It
// does nothing when the broker is running.
func (k *Kafka) Start() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster != nil {
		return
	}
	// The port can stay busy for a moment after a Stop while the old listener's
	// connections wind down, so retry briefly rather than fail on the first attempt.
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.cluster, err = kfake.NewCluster(
			kfake.Ports(k.port),
			kfake.DataDir(k.dataDir),
			kfake.ClusterID("shoal-test"),
		)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		k.cluster = nil
		k.t.Fatalf("starting kfake on %s: %v", Addr(k.port), err)
	}
	WaitForPort(k.t, Addr(k.port), 5*time.Second, "")
}

// Stop shuts the broker down, keeping its state for a later Start. Clients get connection
// refused until then. Stopping a stopped broker does nothing.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster == nil {
		return
	}
	k.cluster.Close()
	k.cluster = nil
}

// Cluster is the running kfake cluster, for tests that inject faults with its Control
// hooks; nil while stopped.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}
