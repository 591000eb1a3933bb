package testbackends

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Suite is a testing.TB for TestMain, so a package's tests can share backends started
// once with the same helpers a single test uses. A Fatal inside Do ends Do with an error;
// Close runs the cleanups, last registered first.
type Suite struct {
	// testing.TB is embedded only to satisfy the interface's unexported method; it is nil,
	// so a helper calling a method Suite does not implement fails loudly.
	testing.TB

	name     string
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

// NewSuite returns a Suite named after the test package.
func NewSuite(name string) *Suite { return &Suite{name: name} }

// suiteFatal carries a Fatal out of Do.
type suiteFatal struct{ msg string }

// Do runs fn, turning a Fatal into an error.
func (s *Suite) Do(fn func(tb testing.TB)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(suiteFatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s: %s", s.name, f.msg)
		}
	}()
	fn(s)
	return nil
}

// Close runs the registered cleanups in reverse order and removes the temp dirs.
func (s *Suite) Close() {
	s.mu.Lock()
	cleanups, dirs := s.cleanups, s.dirs
	s.cleanups, s.dirs = nil, nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

func (s *Suite) Name() string { return s.name }
func (s *Suite) Helper()      {}

func (s *Suite) Cleanup(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, fn)
}

func (s *Suite) TempDir() string {
	dir, err := os.MkdirTemp("", "shoal-"+s.name+"-")
	if err != nil {
		s.Fatalf("creating a temp dir: %v", err)
	}
	s.mu.Lock()
	s.dirs = append(s.dirs, dir)
	s.mu.Unlock()
	return dir
}

func (s *Suite) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (s *Suite) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (s *Suite) Fatal(args ...any)               { panic(suiteFatal{fmt.Sprint(args...)}) }
func (s *Suite) Fatalf(format string, args ...any) {
	panic(suiteFatal{fmt.Sprintf(format, args...)})
}
func (s *Suite) Error(args ...any)                 { s.Fatal(args...) }
func (s *Suite) Errorf(format string, args ...any) { s.Fatalf(format, args...) }
