package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/internal/config"
)

// OperatorConfig returns the platform config at path as the benchmark runs the operator
// with it: maxConcurrentReconciles set to concurrency when that is above zero, and the
// metrics and health endpoints off so a run needs no free ports. It returns the config
// and the document to write.
func OperatorConfig(path string, concurrency int) (*config.Platform, []byte, error) {
	platform, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if concurrency > 0 {
		platform.Operator.MaxConcurrentReconciles = concurrency
	}
	platform.Operator.MetricsAddr, platform.Operator.HealthAddr = "0", "0"
	// Load copied the plans' prices into billing.prices, which a document may not set.
	platform.Billing.Prices = nil
	data, err := yaml.Marshal(platform)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the operator's platform config: %w", err)
	}
	// Checked here so that a bad --concurrency is reported by name before the operator
	// is started, rather than found in its log.
	checked, err := config.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("the benchmark's platform config: %w", err)
	}
	return checked, data, nil
}

// operatorProcess is the operator running as a child process.
type operatorProcess struct {
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	// exited is closed once the process ended; err is then its exit error.
	exited chan struct{}
	err    error
}

// startOperator runs `bin operator --config configPath --kubeconfig kubeconfig` with its
// output going to logPath.
func startOperator(bin, configPath, kubeconfig, logPath string) (*operatorProcess, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the operator log: %w", err)
	}
	cmd := exec.Command(bin, "operator", "--config", configPath, "--kubeconfig", kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting the operator %s: %w", bin, err)
	}
	p := &operatorProcess{cmd: cmd, logPath: logPath, log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = log.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *operatorProcess) pid() int { return p.cmd.Process.Pid }

// exitError says how the operator ended, for a run that needed it still running.
func (p *operatorProcess) exitError() error {
	tail := p.logTail(20)
	if p.err == nil {
		return fmt.Errorf("the operator exited with status 0; its log %s ends with:\n%s", p.logPath, tail)
	}
	return fmt.Errorf("the operator exited: %w; its log %s ends with:\n%s", p.err, p.logPath, tail)
}

// startedMarker is what controller-runtime logs once a controller's workers run: from
// then on a created tenant is reconciled at once, so the clock can start.
const startedMarker = "Starting workers"

// waitStarted waits until the operator's controllers run, it exits, or ctx ends.
func (p *operatorProcess) waitStarted(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			return fmt.Errorf("reading the operator log: %w", err)
		}
		if bytes.Contains(data, []byte(startedMarker)) {
			return nil
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the operator did not start its controllers within %s; see %s", timeout, p.logPath)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the operator to end, killing it after grace. An exit
// caused by the signal is not an error.
func (p *operatorProcess) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping the operator: %w", err)
	}
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if errors.As(p.err, &exit) && exit.ExitCode() == -1 {
			return nil // ended by the signal rather than exiting by itself
		}
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("the operator did not stop within %s of SIGTERM and was killed", grace)
	}
}

// logTail returns the last lines of the operator's log.
func (p *operatorProcess) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	data = bytes.TrimRight(data, "\n")
	for i, n := len(data)-1, 0; i >= 0; i-- {
		if data[i] == '\n' {
			if n++; n == lines {
				return string(data[i+1:])
			}
		}
	}
	return string(data)
}
