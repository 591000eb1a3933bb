// Package testbackends starts the real backend servers that Shoal's suites run against,
// each on free ports in its own temp dir, and stops them when the test ends: ClickHouse,
// PostgreSQL, a Kafka wire-protocol broker, an S3 server and stripe-mock. A missing server
// binary fails the test with a message that says how to install it; nothing is skipped.
package testbackends

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/repo"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is host:port on loopback.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// WaitForPort waits until something accepts TCP connections on addr, failing the test
// after timeout with the log file's tail, so a server that did not start says why.
func WaitForPort(t testing.TB, addr string, timeout time.Duration, logFile string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s after %s: %v\n%s", addr, timeout, err, tail(logFile, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LookBinary finds a server binary: in the repository's bin/ (tools built by make), then
// on PATH. Missing, it fails the test with the install hint.
func LookBinary(t testing.TB, name, installHint string) string {
	t.Helper()
	if root, err := repo.Root(); err == nil {
		dirs := []string{os.Getenv("SHOAL_BIN"), filepath.Join(root, "bin")}
		for _, dir := range dirs {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found in bin/ or on PATH: %s", name, installHint)
	return ""
}

// StartProcess starts a server process whose output goes to logFile and kills it when the
// test ends.
func StartProcess(t testing.TB, logFile string, name string, args ...string) *exec.Cmd {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = out.Close()
	})
	return cmd
}

func tail(path string, lines int) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	s := string(data)
	count := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			count++
			if count > lines {
				return s[i+1:]
			}
		}
	}
	return s
}
