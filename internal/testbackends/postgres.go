package testbackends

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresInstallHint is what a machine without the server binaries needs.
const postgresInstallHint = "install the Debian package postgresql"

// postgresSuperuser is the superuser initdb creates; trust auth, so no password.
const postgresSuperuser = "shoal"

// Postgres is a PostgreSQL server owned by one test: its own data directory, port and
// socket directory, stopped when the test ends.
type Postgres struct {
	Port    int
	dataDir string
	sockDir string
	logFile string
	pgCtl   string
	// cred runs the server as an unprivileged user when the test runs as root, because
	// initdb and postgres refuse to run as root.
	cred *syscall.Credential
}

// StartPostgres initialises a cluster in a temp dir and starts it on a free port,
// listening on 127.0.0.1 only. It is stopped (immediate mode) when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := lookPostgresBinary(t, "initdb")
	pgCtl := lookPostgresBinary(t, "pg_ctl")

	dir := t.TempDir()
	p := &Postgres{
		Port:    FreePort(t),
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logFile: filepath.Join(dir, "postgres.log"),
		pgCtl:   pgCtl,
	}
	// A unix socket path is limited to about 107 bytes; deep temp dirs of long test
	// names can exceed it, so fall back to a short directory.
	if len(p.sockDir) > 80 {
		short, err := os.MkdirTemp("", "pgsock")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(short) })
		p.sockDir = short
	}
	if err := os.MkdirAll(p.sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		p.cred = unprivilegedCredential(t)
		for _, d := range []string{dir, p.sockDir} {
			if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				t.Fatalf("handing %s to the postgres user: %v", d, err)
			}
			openAncestors(t, d)
		}
	}

	out, err := p.command(initdb, "-D", p.dataDir, "-U", postgresSuperuser, "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = p.stop() })
	p.Start(t)
	return p
}

// lookPostgresBinary finds a server binary on PATH, then in Debian's versioned
// /usr/lib/postgresql/<version>/bin, which is not on PATH by default.
func lookPostgresBinary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	if len(matches) > 0 {
		return matches[len(matches)-1] // highest version: Glob sorts
	}
	t.Fatalf("%s not found: %s", name, postgresInstallHint)
	return ""
}

// unprivilegedCredential picks the user the server runs as when the test is root.
func unprivilegedCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	t.Fatalf("running as root, and no unprivileged user (postgres, nobody) to run the server as: %s", postgresInstallHint)
	return nil
}

// openAncestors lets the server user traverse the directories above d up to the system
// temp dir; t.TempDir creates them mode 0700 for root.
func openAncestors(t testing.TB, d string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for dir := filepath.Dir(d); strings.HasPrefix(dir, top+string(filepath.Separator)); dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	// The test's working directory may not be readable by the server user.
	cmd.Dir = filepath.Dir(p.dataDir)
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

// Start starts the server (again, after Stop) and waits until it accepts connections.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	opts := strings.Join([]string{
		"-p", strconv.Itoa(p.Port),
		"-k", p.sockDir,
		"-c", "listen_addresses=127.0.0.1",
		// Test data need not survive a machine crash: skip the disk flushes. Commits stay
		// synchronous, so what was committed survives Stop (a server crash) and Start.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
	}, " ")
	out, err := p.command(p.pgCtl, "start", "-D", p.dataDir, "-l", p.logFile, "-w", "-t", "60", "-o", opts).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tail(p.logFile, 30))
	}
	WaitForPort(t, Addr(p.Port), 30*time.Second, p.logFile)
}

// Stop stops the server at once (immediate mode), as a crash or outage would.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

func (p *Postgres) stop() error {
	out, err := p.command(p.pgCtl, "stop", "-D", p.dataDir, "-m", "immediate", "-w").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// DSN is the connection string of the superuser to the default database.
func (p *Postgres) DSN() string { return p.dsn("postgres") }

func (p *Postgres) dsn(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(postgresSuperuser),
		Host:     Addr(p.Port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates an empty database and returns its DSN, so each test gets its
// own schema.
func (p *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("creating database %q: %v", name, err)
	}
	return p.dsn(name)
}
