package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/internal/config"
	"github.com/shoal-dev/shoal/internal/lake"
	"github.com/shoal-dev/shoal/internal/naming"
	"github.com/shoal-dev/shoal/runtime/ingest"
)

// dataPathPlatform is the platform config the in-process operator runs with, pointed at
// the test backends; TestMain sets it.
var dataPathPlatform *config.Platform

const dataPathTenant = "datapath"

// TestDataPath sends events through `shoal dev` (ingest and process as a real process) for
// a tenant the operator provisioned, and reads them back from ClickHouse and the lake,
// also across a kill -9 of the process in the middle of sending.
func TestDataPath(t *testing.T) {
	if _, err := os.Stat(filepath.Join(env.Bin, "shoal")); err != nil {
		t.Fatal("shoal is not built: run `make build` (make test does)")
	}
	if dataPathPlatform == nil {
		t.Fatal("TestMain did not set the platform config")
	}
	configPath := writePlatformConfig(t, dataPathPlatform)
	key, prefix := applyTenant(t, dataPathTenant, "team", 3)

	dev := startDev(t, configPath, freeAddr(t), freeAddr(t))
	waitReady(t, dev)
	conn := clickHouseConn(t, dataPathPlatform)
	db := naming.Database(dataPathTenant)

	// 200 events: every tenth invalid, ten reusing an earlier event's id in the request;
	// then the first 50 once more.
	var first []map[string]any
	wantRejected := map[int]bool{}
	wantIDs := map[string]bool{}
	for i := range 200 {
		ev := map[string]any{
			"event_id":   fmt.Sprintf("p1-%03d", i),
			"event_type": []string{"page_view", "signup"}[i%2],
			"user_id":    fmt.Sprintf("u%d", i%17),
			"properties": map[string]any{"path": "/p", "n": i},
		}
		switch {
		case i%10 == 9:
			delete(ev, "event_type")
			wantRejected[i] = true
		case i >= 100 && i < 110:
			ev["event_id"] = fmt.Sprintf("p1-%03d", i-100)
		}
		if !wantRejected[i] {
			wantIDs[ev["event_id"].(string)] = true
		}
		first = append(first, ev)
	}
	res, status := postEvents(t, dev.ingestURL, key, first)
	if status != http.StatusOK || res.Accepted != 180 || len(res.EventIDs) != 180 {
		t.Fatalf("first request: status %d, accepted %d, %d event ids; want 200, 180, 180", status, res.Accepted, len(res.EventIDs))
	}
	var gotRejected []int
	for _, r := range res.Rejected {
		gotRejected = append(gotRejected, r.Index)
		if r.Field != "event_type" {
			t.Errorf("rejection %+v: want the field event_type", r)
		}
	}
	if len(gotRejected) != len(wantRejected) || !allIn(gotRejected, wantRejected) {
		t.Errorf("rejected indexes %v, want every tenth", gotRejected)
	}
	acked := map[string]bool{}
	for _, id := range res.EventIDs {
		acked[id] = true
	}
	res, status = postEvents(t, dev.ingestURL, key, first[:50])
	if status != http.StatusOK || res.Accepted != 45 {
		t.Fatalf("repeated request: status %d, accepted %d; want 200, 45", status, res.Accepted)
	}
	for _, id := range res.EventIDs {
		acked[id] = true
	}
	if len(acked) != len(wantIDs) {
		t.Fatalf("acknowledged %d distinct event ids, want %d", len(acked), len(wantIDs))
	}
	waitCounts(t, conn, db, len(acked), dev)
	waitFor(t, 30*time.Second, "a lake object under "+prefix, dev, func() error {
		if keys := lakeKeys(t, dataPathPlatform, prefix); len(keys) == 0 {
			return errors.New("none yet")
		}
		return nil
	})

	// 2000 more in requests of 100, the process killed (-9) while they are sent and
	// started again; every request is retried with the same ids until it is acknowledged.
	var mu sync.Mutex
	sent, retried := 0, 0
	sendErr := make(chan error, 1)
	url := dev.ingestURL // the restarted process serves the same address
	go func() {
		var err error
		for b := range 20 {
			var batch []map[string]any
			for i := range 100 {
				n := b*100 + i
				batch = append(batch, map[string]any{
					"event_id":   fmt.Sprintf("p2-%04d", n),
					"event_type": "page_view",
					"user_id":    fmt.Sprintf("u%d", n%31),
				})
			}
			var ids []string
			var retries int
			if ids, retries, err = sendUntilAcked(url, key, batch); err != nil {
				break
			}
			mu.Lock()
			retried += retries
			for _, id := range ids {
				acked[id] = true
			}
			sent++
			mu.Unlock()
		}
		sendErr <- err
	}()
	// Kill once five requests are acknowledged: the sender is then sending the sixth.
	var err error
	for killed := false; ; {
		mu.Lock()
		n := sent
		mu.Unlock()
		if n >= 5 && !killed {
			dev.kill(t)
			dev = startDev(t, configPath, dev.listen, dev.processListen)
			killed = true
		}
		select {
		case err = <-sendErr:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		if !killed {
			t.Fatalf("sending stopped before the kill: %v", err)
		}
		break
	}
	if err != nil {
		t.Fatalf("sending: %v", err)
	}
	t.Logf("after the kill, %d sends were retried", retried)
	if want := len(wantIDs) + 2000; len(acked) != want {
		t.Errorf("acknowledged %d distinct event ids, want %d", len(acked), want)
	}
	waitCounts(t, conn, db, len(acked), dev)
}

// allIn reports whether every index is in want.
func allIn(got []int, want map[int]bool) bool {
	for _, i := range got {
		if !want[i] {
			return false
		}
	}
	return true
}

// writePlatformConfig writes cfg where shoal dev can load it.
func writePlatformConfig(t *testing.T, cfg *config.Platform) string {
	t.Helper()
	c := *cfg
	// Loading refuses prices: they come from the plan catalog.
	c.Billing.Prices = nil
	data, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// devProcess is one run of `shoal dev`.
type devProcess struct {
	cmd                   *exec.Cmd
	log                   *lockedBuffer
	listen, processListen string
	ingestURL             string
	exited                chan struct{}
}

// startDev starts `shoal dev`; the test's cleanup stops it with SIGTERM.
func startDev(t *testing.T, configPath, listen, processListen string) *devProcess {
	t.Helper()
	d := &devProcess{
		log:           &lockedBuffer{},
		listen:        listen,
		processListen: processListen,
		ingestURL:     "http://" + listen + "/api/v1/events/ingest",
		exited:        make(chan struct{}),
	}
	d.cmd = exec.Command(filepath.Join(env.Bin, "shoal"), "dev", "--config", configPath, "--listen", listen, "--process-listen", processListen, "--query-listen", "0")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
			return
		default:
		}
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.exited:
			if code := d.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("shoal dev exited %d on SIGINT:\n%s", code, lastLines(d.log.String(), 40))
			}
		case <-time.After(60 * time.Second):
			_ = d.cmd.Process.Kill()
			t.Errorf("shoal dev did not stop within 60s of SIGINT:\n%s", lastLines(d.log.String(), 40))
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shoal dev log (%s, last lines):\n%s", listen, lastLines(d.log.String(), 60))
		}
	})
	return d
}

// kill stops the process with SIGKILL and waits for it to be gone.
func (d *devProcess) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
}

// waitReady waits until both servers of d answer /readyz.
func waitReady(t *testing.T, d *devProcess) {
	t.Helper()
	waitFor(t, 60*time.Second, "shoal dev ready", d, func() error {
		for _, addr := range []string{d.listen, d.processListen} {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s/readyz: %s", addr, resp.Status)
			}
		}
		return nil
	})
}

// waitFor polls check until it passes, failing after timeout or once d exited.
func waitFor(t *testing.T, timeout time.Duration, what string, d *devProcess, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-d.exited:
			t.Fatalf("%s: shoal dev exited: %v", what, d.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// postEvents sends evs in one request and decodes the answer.
func postEvents(t *testing.T, url, key string, evs []map[string]any) (ingest.Result, int) {
	t.Helper()
	res, status, err := post(url, key, evs)
	if err != nil {
		t.Fatal(err)
	}
	return res, status
}

func post(url, key string, evs []map[string]any) (ingest.Result, int, error) {
	var res ingest.Result
	body, err := json.Marshal(evs)
	if err != nil {
		return res, 0, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusBadRequest {
		if err := json.Unmarshal(data, &res); err != nil {
			return res, resp.StatusCode, fmt.Errorf("decoding %s: %w", data, err)
		}
	}
	return res, resp.StatusCode, nil
}

// sendUntilAcked sends evs until they are acknowledged, retrying connection errors and
// 503s/429s with the same event ids, for at most two minutes; it returns the acked ids
// and how often it sent again.
func sendUntilAcked(url, key string, evs []map[string]any) ([]string, int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for retries := 0; ; retries++ {
		res, status, err := post(url, key, evs)
		switch {
		case err == nil && status == http.StatusOK:
			if res.Accepted != len(evs) {
				return nil, retries, fmt.Errorf("accepted %d of %d: %+v", res.Accepted, len(evs), res.Rejected)
			}
			return res.EventIDs, retries, nil
		case err == nil && status != http.StatusServiceUnavailable && status != http.StatusTooManyRequests:
			return nil, retries, fmt.Errorf("answer %d", status)
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("answer %d", status)
			}
			return nil, retries, fmt.Errorf("not acknowledged within 2m: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func clickHouseConn(t *testing.T, cfg *config.Platform) ch.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{
		Addr: []string{cfg.ClickHouse.Addr},
		Auth: ch.Auth{Username: cfg.ClickHouse.User, Password: cfg.ClickHouse.Password},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitCounts polls until the tenant's table holds want distinct event ids, counted both
// ways, and fails when either goes past it.
func waitCounts(t *testing.T, conn ch.Conn, db string, want int, d *devProcess) {
	t.Helper()
	waitFor(t, 3*time.Minute, fmt.Sprintf("%d events in %s", want, db), d, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var unique, final uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM `"+db+"`.`events`").Scan(&unique); err != nil {
			return err
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`events` FINAL").Scan(&final); err != nil {
			return err
		}
		if unique > uint64(want) || final > uint64(want) {
			t.Fatalf("%s: uniqExact(event_id) %d, count() FINAL %d; more than the %d acknowledged", db, unique, final, want)
		}
		if unique != uint64(want) || final != uint64(want) {
			return fmt.Errorf("uniqExact(event_id) %d, count() FINAL %d; want %d", unique, final, want)
		}
		return nil
	})
}

// lakeKeys lists the batch objects under prefix.
func lakeKeys(t *testing.T, cfg *config.Platform, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := s3.New(s3.Options{
		Region:       cfg.Lake.Region,
		BaseEndpoint: aws.String(cfg.Lake.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.Lake.AccessKeyID, cfg.Lake.SecretAccessKey, ""),
	})
	var keys []string
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(cfg.Lake.Bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			if key := aws.ToString(obj.Key); key != lake.MarkerKey(prefix) {
				keys = append(keys, key)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
