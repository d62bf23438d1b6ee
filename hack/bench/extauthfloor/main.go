// Command extauthfloor is the cheapest possible docker_auth ext_auth
// command, for the bench's floor: a stdlib-only Go program that reads its
// input (as any ext_auth command must), writes its first argument (the
// labels JSON) to standard output and exits 0, allowing every login. Never
// install it anywhere.
package main

import (
	"io"
	"os"
)

func main() {
	_, _ = io.Copy(io.Discard, io.LimitReader(os.Stdin, 4096))
	if len(os.Args) > 1 {
		_, _ = os.Stdout.WriteString(os.Args[1] + "\n")
	}
}
