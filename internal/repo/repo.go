// Package repo finds the Shoal source tree a test, the demo or a benchmark runs in, for
// the files and built binaries they use.
package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// module is the module path of the repository's go.mod.
const module = "github.com/shoal-dev/shoal"

// Root is the directory of the repository's go.mod, found upwards from the working
// directory (tests run in their package's directory).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module "+module+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", module)
		}
		dir = parent
	}
}
