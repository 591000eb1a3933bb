package testenv

import (
	"testing"
	"time"
)

// Eventually runs check until it returns nil or timeout passes, then fails the test with
// check's last error. Controllers converge; tests wait for the state, not for a time.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
