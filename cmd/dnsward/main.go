// Command dnsward is a caching, policy-enforcing DNS forwarder.
//
//	dnsward [serve] [-config FILE]          run (embedded default config without -config)
//	dnsward check -config FILE              validate a config and print a summary
//	dnsward explain [-config FILE] [-client IP] [-token T] NAME|ADDRESS
//	dnsward profile -config FILE -group NAME -format mobileconfig|android|windows [-token T]
//	dnsward health [-admin ADDR] [-dns ADDR -probe NAME]
//	dnsward version
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serveCmd(args, stderr)
	case "check":
		return checkCmd(args, stdout, stderr)
	case "explain":
		return explainCmd(args, stdout, stderr)
	case "profile":
		return profileCmd(args, stdout, stderr)
	case "health":
		return healthCmd(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "dnsward", versionString(), runtime.Version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dnsward: unknown command %q\n\n%s", cmd, usage)
	return 2
}

const usage = `usage:
  dnsward [serve] [-config FILE]                       run the resolver (embedded default config without -config)
  dnsward check -config FILE                           validate a config file and print a summary
  dnsward explain [-config FILE] [-client IP] [-token T] NAME
                                                       say which group, list and rule decide NAME
  dnsward profile -config FILE -group NAME -format mobileconfig|android|windows [-token T]
                                                       print what an MDM needs to give devices the group's encrypted DNS
  dnsward health [-admin ADDR] [-dns ADDR -probe NAME] exit 0 if /healthz answers (and NAME resolves)
  dnsward version                                      print the version
`

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}
