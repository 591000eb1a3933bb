package e2e_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-dev/shoal/controllers/objects"
	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/naming"
)

// shoalProcess is one run of a shoal subcommand as a real process.
type shoalProcess struct {
	name   string
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
	// killed is set by kill, so the cleanup does not take the exit for a failure.
	killed bool
}

// startShoal starts `shoal <args>`; the test's cleanup stops it with SIGINT and fails the
// test when it does not exit cleanly.
func startShoal(t *testing.T, name string, args ...string) *shoalProcess {
	t.Helper()
	p := &shoalProcess{name: name, log: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(env.Bin, "shoal"), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", p.name, lastLines(p.log.String(), 40))
		}
	})
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("%s exited %d on SIGINT:\n%s", p.name, code, lastLines(p.log.String(), 40))
			}
		case <-time.After(60 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop within 60s of SIGINT:\n%s", p.name, lastLines(p.log.String(), 40))
		}
	})
	return p
}

// kill stops the process with SIGKILL and waits until it is gone.
func (p *shoalProcess) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing %s: %v", p.name, err)
	}
	<-p.exited
}

// alive fails the test when the process exited without being killed.
func (p *shoalProcess) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		if !p.killed {
			t.Fatalf("%s exited by itself (%v):\n%s", p.name, p.cmd.ProcessState, lastLines(p.log.String(), 40))
		}
	default:
	}
}

// poll calls check until it passes, failing after timeout or when one of procs exited;
// the failure shows check's last error, which should say how far things got.
func poll(t *testing.T, timeout time.Duration, what string, procs []*shoalProcess, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		for _, p := range procs {
			p.alive(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitHTTPReady waits until addr answers /readyz with 200.
func waitHTTPReady(t *testing.T, addr string, p *shoalProcess) {
	t.Helper()
	poll(t, 60*time.Second, p.name+" ready", []*shoalProcess{p}, func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/readyz: %s", addr, resp.Status)
		}
		return nil
	})
}

// metricValue reads the sum of a counter or gauge over its labels from a /metrics page;
// absent counts as 0.
func metricValue(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// applyTenant applies a Shared tenant of the given plan, waits until it is Ready and
// returns its ingest key and lake prefix.
func applyTenant(t *testing.T, name, plan string, partitions int) (key, prefix string) {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: analytics.shoal.dev/v1alpha1
kind: Tenant
metadata:
  name: %s
spec:
  displayName: %s
  plan: %s
  isolation: Shared
  owners: [ops@%s.example]
  kafka: {partitions: %d}
`, name, name, plan, name, partitions)
	file := filepath.Join(t.TempDir(), "tenant.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-f", file)
	t.Cleanup(func() { kubectl(t, "delete", "tenant", name, "--wait=false") })
	mustKubectl(t, "wait", "--for=condition=Ready", "tenant/"+name, "--timeout=60s")
	encoded := mustKubectl(t, "get", "secret", "-n", naming.TenantNamespace(name), naming.IngestKeySecret(name),
		"-o", "jsonpath={.data."+objects.IngestKeySecretKey+"}")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		t.Fatalf("decoding the ingest key: %v", err)
	}
	prefix = strings.TrimSpace(mustKubectl(t, "get", "tenant", name, "-o", "jsonpath={.status.storage.prefix}"))
	if prefix == "" {
		t.Fatal("the tenant's status has no lake prefix")
	}
	return string(raw), prefix
}

// crashEvent is event n of the crash test: about 300 bytes of JSON with 8 properties and
// a timestamp fixed by the test, so every delivery of it has the same sorting key. Even
// events carry the client's id; ingest assigns the odd ones theirs, which the processor
// looks up only where a batch may have been written before.
func crashEvent(n int, ts time.Time) map[string]any {
	ev := map[string]any{
		"event_type": []string{"page_view", "click", "signup", "purchase"}[n%4],
		"timestamp":  ts.Format(time.RFC3339),
		"user_id":    fmt.Sprintf("user-%05d", n%9973),
		"session_id": fmt.Sprintf("session-%04d", n%1009),
		"properties": map[string]any{
			"path":     fmt.Sprintf("/catalog/item/%d", n%5003),
			"referrer": "https://search.example/?q=shoal",
			"browser":  []string{"firefox", "chrome", "safari"}[n%3],
			"country":  []string{"DE", "FR", "US", "JP", "BR"}[n%5],
			"plan":     "team",
			"amount":   n % 1000,
			"items":    n % 7,
			"campaign": fmt.Sprintf("spring-%02d", n%12),
		},
	}
	if n%2 == 0 {
		ev["event_id"] = crashEventID(n)
	}
	return ev
}

func crashEventID(n int) string { return fmt.Sprintf("crash-%06d", n) }

// evictGroupMembers removes every member of a consumer group, as the broker does when
// their session times out. Called while no processor of the group runs, it evicts the
// killed one at once instead of after the session timeout.
func evictGroupMembers(ctx context.Context, brokers []string, group string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("describing group %s: %w", group, err)
	}
	g, ok := described[group]
	if !ok {
		return 0, fmt.Errorf("describing group %s: not in the answer", group)
	}
	if g.Err != nil {
		return 0, fmt.Errorf("describing group %s: %w", group, g.Err)
	}
	if len(g.Members) == 0 {
		return 0, nil
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range g.Members {
		rm := kmsg.NewLeaveGroupRequestMember()
		rm.MemberID = m.MemberID
		req.Members = append(req.Members, rm)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("removing the members of %s: %w", group, err)
	}
	for _, m := range resp.Members {
		if m.ErrorCode != 0 {
			return 0, fmt.Errorf("removing member %s of %s: error code %d", m.MemberID, group, m.ErrorCode)
		}
	}
	return len(req.Members), nil
}

// batchIntentPrefix starts the commit metadata by which the processor records the offset
// range of a batch it is writing, between committing that range and committing the
// batch's end.
const batchIntentPrefix = "shoal-batch/v1:"

// waitBatchInFlight waits until a partition of the group has a batch in flight, the
// moment a crash is most likely to leave it half written, and says whether it saw one
// before ctx ended.
func waitBatchInFlight(ctx context.Context, brokers []string, group string) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		offsets, err := adm.FetchOffsets(ctx, group)
		if ctx.Err() != nil {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("fetching the offsets of %s: %w", group, err)
		}
		inFlight := false
		offsets.Each(func(o kadm.OffsetResponse) {
			inFlight = inFlight || strings.HasPrefix(o.Metadata, batchIntentPrefix)
		})
		if inFlight {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// logRecord is one record of a tenant topic: its offset, timestamp, event id and value.
type logRecord struct {
	offset int64
	ts     time.Time
	id     string
	value  []byte
}

// readTopic reads every record of topic, by partition, up to the end offsets it finds.
func readTopic(t *testing.T, brokers []string, topic string) map[int32][]logRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing the end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	out := map[int32][]logRecord{}
	done := func() bool {
		for p, end := range want {
			if n := len(out[p]); end > 0 && (n == 0 || out[p][n-1].offset < end-1) {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (end offsets %v)", topic, ctx.Err(), want)
		}
		fetches.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s[%d]: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			var ev struct {
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("%s[%d]@%d: %v", topic, r.Partition, r.Offset, err)
			}
			out[r.Partition] = append(out[r.Partition], logRecord{offset: r.Offset, ts: r.Timestamp, id: ev.EventID, value: r.Value})
		})
	}
	return out
}

// lakeObject is one batch object of the lake, its key parsed.
type lakeObject struct {
	key         string
	partition   int32
	first, last int64
	lines       [][]byte
	ids         []string
}

// lakeKeyPattern matches the deterministic key of a batch object of topic under prefix:
// <prefix>dt=YYYY-MM-DD/hr=HH/<topic>-p<partition>-<first>-<last>.ndjson.gz.
func lakeKeyPattern(prefix, topic string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `dt=\d{4}-\d{2}-\d{2}/hr=\d{2}/` +
		regexp.QuoteMeta(topic) + `-p(\d+)-(\d+)-(\d+)\.ndjson\.gz$`)
}

// readLake lists and reads every batch object under prefix. A key not of the batch form
// is returned in bad.
func readLake(t *testing.T, cfg *config.Platform, prefix, topic string) (objs []lakeObject, bad []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := lake.New(ctx, cfg.Lake)
	if err != nil {
		t.Fatal(err)
	}
	pattern := lakeKeyPattern(prefix, topic)
	for _, key := range lakeKeys(t, cfg, prefix) {
		m := pattern.FindStringSubmatch(key)
		if m == nil {
			bad = append(bad, key)
			continue
		}
		part, _ := strconv.ParseInt(m[1], 10, 32)
		first, _ := strconv.ParseInt(m[2], 10, 64)
		last, _ := strconv.ParseInt(m[3], 10, 64)
		body, err := client.GetObject(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		lines, ids, err := parseLakeObject(body)
		if err != nil {
			t.Fatalf("lake object %s: %v", key, err)
		}
		objs = append(objs, lakeObject{key: key, partition: int32(part), first: first, last: last, lines: lines, ids: ids})
	}
	return objs, bad
}

// parseLakeObject gunzips an NDJSON object and returns its lines and their event ids.
func parseLakeObject(body []byte) (lines [][]byte, ids []string, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, nil, fmt.Errorf("not newline-terminated NDJSON (%d bytes)", len(data))
	}
	for _, line := range bytes.Split(data[:len(data)-1], []byte{'\n'}) {
		var ev struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", len(lines)+1, err)
		}
		lines = append(lines, line)
		ids = append(ids, ev.EventID)
	}
	return lines, ids, nil
}

// clickHouseIDs returns the event ids of the tenant's events table, with FINAL.
func clickHouseIDs(ctx context.Context, conn ch.Conn, db string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT event_id FROM `"+db+"`.`events` FINAL")
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// clickHouseCounts returns uniqExact(event_id) and count() FINAL of the tenant's table.
func clickHouseCounts(ctx context.Context, conn ch.Conn, db string) (unique, final uint64, err error) {
	if err = conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM `"+db+"`.`events`").Scan(&unique); err != nil {
		return 0, 0, err
	}
	err = conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`events` FINAL").Scan(&final)
	return unique, final, err
}

// clickHouseRows is count() of the tenant's table without FINAL: every row, copies not
// merged away yet included.
func clickHouseRows(ctx context.Context, conn ch.Conn, db string) (rows uint64, err error) {
	err = conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`events`").Scan(&rows)
	return rows, err
}

// setDiff returns up to n sorted samples of the keys of a missing from b, and how many.
func setDiff(a, b map[string]bool, n int) ([]string, int) {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	total := len(out)
	if len(out) > n {
		out = out[:n]
	}
	return out, total
}
