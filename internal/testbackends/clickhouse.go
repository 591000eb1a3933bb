package testbackends

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/shoal-dev/shoal/internal/repo"
)

const clickHouseInstallHint = "clickhouse-server not found: install the Debian package clickhouse-server"

// ClickHouse is a real clickhouse-server with its own config in a temp dir. Its data
// survives Stop and Restart, so an outage test finds its databases again.
type ClickHouse struct {
	// Addr is host:port of the native protocol.
	Addr string
	// HTTPAddr is host:port of the HTTP interface.
	HTTPAddr string
	// User and Password are the admin user's credentials.
	User, Password string
	// UsersDir is the users.d directory the server merges into its users and re-reads on
	// its own: a file per user added there becomes a login within seconds.
	UsersDir string

	bin     []string // the binary and, for the multi-call binary, "server"
	dir     string
	logFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *os.File
	exited chan error // gets the process's exit; nil while stopped
}

// StartClickHouse starts clickhouse-server on free ports and stops it when the test ends.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	c := &ClickHouse{
		bin:      lookClickHouse(t),
		dir:      t.TempDir(),
		User:     "default",
		Password: "shoal-test-admin",
		Addr:     Addr(FreePort(t)),
		HTTPAddr: Addr(FreePort(t)),
	}
	c.UsersDir = filepath.Join(c.dir, "users.d")
	c.logFile = filepath.Join(c.dir, "log", "stdout.log")
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "access", "log", "users.d"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "config.xml"), []byte(c.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "users.xml"), []byte(c.users()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	c.start(t)
	return c
}

// lookClickHouse finds clickhouse-server, or the multi-call clickhouse binary run as
// "clickhouse server".
func lookClickHouse(t testing.TB) []string {
	t.Helper()
	var dirs []string
	if root, err := repo.Root(); err == nil {
		dirs = append(dirs, os.Getenv("SHOAL_BIN"), filepath.Join(root, "bin"))
	}
	for _, cand := range [][]string{{"clickhouse-server"}, {"clickhouse", "server"}} {
		for _, dir := range dirs {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, cand[0])
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return append([]string{p}, cand[1:]...)
			}
		}
		if p, err := exec.LookPath(cand[0]); err == nil {
			return append([]string{p}, cand[1:]...)
		}
	}
	t.Fatal(clickHouseInstallHint)
	return nil
}

func (c *ClickHouse) config() string {
	_, tcpPort, _ := net.SplitHostPort(c.Addr)
	_, httpPort, _ := net.SplitHostPort(c.HTTPAddr)
	p := func(sub string) string { return filepath.Join(c.dir, sub) + "/" }
	// access_control_path and the users.d directory next to users.xml serve both old servers
	// (which ignore the former) and current ones (SQL users need a writable store).
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>%[1]s/log/server.log</log>
    <errorlog>%[1]s/log/error.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]s</tcp_port>
  <http_port>%[3]s</http_port>
  <path>%[4]s</path>
  <tmp_path>%[5]s</tmp_path>
  <user_files_path>%[6]s</user_files_path>
  <format_schema_path>%[7]s</format_schema_path>
  <access_control_path>%[8]s</access_control_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
</yandex>
`, c.dir, tcpPort, httpPort, p("data"), p("tmp"), p("user_files"), p("format_schemas"), p("access"))
}

func (c *ClickHouse) users() string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>2000000000</max_memory_usage></default>
  </profiles>
  <users>
    <%[1]s>
      <password>%[2]s</password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </%[1]s>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`, c.User, c.Password)
}

// start runs the server and waits until it answers SELECT 1 over the native protocol.
func (c *ClickHouse) start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return
	}
	out, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, c.bin[1:]...), "--config-file="+filepath.Join(c.dir, "config.xml"))
	cmd := exec.Command(c.bin[0], args...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("starting %s: %v", c.bin[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c.cmd, c.out, c.exited = cmd, out, exited
	if err := c.waitReady(exited, 60*time.Second); err != nil {
		c.stopLocked()
		t.Fatalf("clickhouse-server on %s: %v\n%s\n%s", c.Addr, err,
			tail(filepath.Join(c.dir, "log", "error.log"), 20), tail(c.logFile, 20))
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 20 s) and waits for it to exit.
// Stopping a stopped server does nothing.
func (c *ClickHouse) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *ClickHouse) stopLocked() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	// The exit status of a server we stopped says nothing useful.
	select {
	case exitErr := <-c.exited:
		_ = exitErr
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		exitErr := <-c.exited
		_ = exitErr
	}
	_ = c.out.Close()
	c.cmd, c.out, c.exited = nil, nil, nil
}

// Restart starts the server again on the same ports and data after a Stop (or stops it
// first if it runs), returning once it answers.
func (c *ClickHouse) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	c.start(t)
}

// waitReady polls SELECT 1 until it answers, the process dies or timeout passes.
func (c *ClickHouse) waitReady(exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before answering: %w", err)
		default:
		}
		if last = c.ping(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer to SELECT 1 after %s: %w", timeout, last)
}

func (c *ClickHouse) ping() error {
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{c.Addr},
		Auth:        ch.Auth{Username: c.User, Password: c.Password},
		DialTimeout: time.Second,
	})
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var one uint8
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}
