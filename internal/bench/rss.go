package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcMemory is a process's resident memory as /proc/<pid>/status reports it, in bytes.
type ProcMemory struct {
	// RSS is the resident set size now (VmRSS).
	RSS uint64
	// HWM is the peak resident set size since the process started (VmHWM).
	HWM uint64
}

// ParseProcStatus reads VmRSS and VmHWM from the text of /proc/<pid>/status. A status
// without VmRSS (a process that exited and is not yet reaped) is an error.
func ParseProcStatus(status []byte) (ProcMemory, error) {
	var m ProcMemory
	var haveRSS bool
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		n, err := parseKB(value)
		if err != nil {
			return ProcMemory{}, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS, haveRSS = n, true
		} else {
			m.HWM = n
		}
	}
	if err := sc.Err(); err != nil {
		return ProcMemory{}, err
	}
	if !haveRSS {
		return ProcMemory{}, errors.New("no VmRSS in process status")
	}
	return m, nil
}

// parseKB parses a status value such as "  123456 kB" into bytes; the kernel's "kB" is
// KiB.
func parseKB(value string) (uint64, error) {
	fields := strings.Fields(value)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, fmt.Errorf("unexpected value %q, want <n> kB", strings.TrimSpace(value))
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected value %q: %w", strings.TrimSpace(value), err)
	}
	return n << 10, nil
}

// readProcMemory reads the memory figures of process pid.
func readProcMemory(pid int) (ProcMemory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMemory{}, err
	}
	m, err := ParseProcStatus(data)
	if err != nil {
		return ProcMemory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// rssSampler records the highest VmRSS of a process seen at each tick. VmHWM alone would
// do on most kernels; the samples keep a figure when it is missing or the process is gone.
type rssSampler struct {
	pid  int
	mu   sync.Mutex
	peak uint64
}

// run samples every interval until ctx ends.
func (s *rssSampler) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *rssSampler) sample() {
	m, err := readProcMemory(s.pid)
	if err != nil {
		return // the process is exiting; the run notices that on its own
	}
	s.note(max(m.RSS, m.HWM))
}

func (s *rssSampler) note(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = max(s.peak, n)
}

// peakMiB takes a last sample (VmHWM included) and returns the peak seen, in MiB.
func (s *rssSampler) peakMiB() float64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.peak) / (1 << 20)
}
