// Command shoal is the single binary of the Shoal analytics platform: the operator and,
// as they arrive, the data-plane services, each a subcommand.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
