package testbackends

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// S3 is a running versitygw: a real S3 gateway over a posix directory that checks request
// signatures against its root credentials, so wrong credentials are refused as on AWS. It
// does not implement bucket lifecycle rules (lifecycle calls answer NotImplemented).
type S3 struct {
	// Endpoint is the S3 API URL, http://127.0.0.1:<port>; address buckets path-style.
	Endpoint string
	// Region is the region the gateway signs for.
	Region string
	// AccessKey and SecretKey are the gateway's root credentials.
	AccessKey string
	SecretKey string

	t       testing.TB
	bin     string
	addr    string
	dataDir string
	logDir  string
	starts  int
	cmd     *exec.Cmd
}

const s3InstallHint = "build versitygw into bin/: run `make tools`"

// StartS3 starts versitygw on a free port with generated root credentials and its data
// in a temp dir; it is stopped when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{
		Region:    "us-east-1",
		AccessKey: "shoal" + s3RandomHex(t, 6),
		SecretKey: s3RandomHex(t, 20),
		t:         t,
		bin:       LookBinary(t, "versitygw", s3InstallHint),
		dataDir:   t.TempDir(),
		logDir:    t.TempDir(),
	}
	s.addr = Addr(FreePort(t))
	s.Endpoint = "http://" + s.addr
	s.Start()
	return s
}

// Start starts the gateway again after Stop, on the same port and data.
func (s *S3) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("versitygw is already running")
	}
	s.starts++
	logFile := filepath.Join(s.logDir, fmt.Sprintf("versitygw-%d.log", s.starts))
	s.cmd = StartProcess(s.t, logFile, s.bin,
		"--port", s.addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--quiet",
		"posix", s.dataDir)
	WaitForPort(s.t, s.addr, 30*time.Second, logFile)
}

// Stop kills the gateway, for outage tests; its data stays for Start.
func (s *S3) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// s3RandomHex returns 2n random hex digits.
func s3RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("generating credentials: %v", err)
	}
	return hex.EncodeToString(b)
}
