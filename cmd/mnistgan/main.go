// Command mnistgan trains the seed's DCGAN on MNIST with every graph built in Go
// through the TensorFlow C API and every kernel run by libtensorflow.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
	tf "github.com/wamuir/graft/tensorflow"
)

// version is set at build time (make build: -X main.version=$(git describe)).
var version = ""

// wantTF is the TensorFlow release mnistgan is built and tested against.
const wantTF = "2.18."

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status; errors are
// printed to stderr as one line.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.Run(args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "mnistgan: %s\n", oneLine(err))
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// exitCoder is an error that picks the process's exit status.
type exitCoder interface{ ExitCode() int }

// oneLine keeps user-facing errors to one line: TensorFlow messages can carry
// node definitions and graph stacks after the first line.
func oneLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "mnistgan",
		Usage:   "train the seed's DCGAN on MNIST with TensorFlow, from Go",
		Version: programVersion(),
		Commands: []*cli.Command{
			trainCommand(),
			generateCommand(),
			exportCommand(),
			evalCommand(),
			versionCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				var names []string
				for _, cmd := range c.App.VisibleCommands() {
					if cmd.Name != "help" {
						names = append(names, cmd.Name)
					}
				}
				return fmt.Errorf("unknown command %q; the commands are %s (see mnistgan --help)", c.Args().First(), strings.Join(names, ", "))
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError:           usageError,
		HideVersion:            true,
		UseShortOptionHandling: false,
		ExitErrHandler:         func(*cli.Context, error) {}, // main prints errors, once
	}
}

// usageError turns flag-parsing failures into the one-line error style.
func usageError(c *cli.Context, err error, _ bool) error {
	name := "mnistgan"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return fmt.Errorf("%v (see %s --help)", err, name)
}

// checkLibrary refuses to run against a libtensorflow other than 2.18.x: the op
// set and the checkpoint format are those of that release.
func checkLibrary() error {
	if got := tf.Version(); !strings.HasPrefix(got, wantTF) {
		return fmt.Errorf("libtensorflow %s is loaded, but mnistgan needs %sx; run scripts/install-libtensorflow.sh (or make setup) and rebuild", got, wantTF)
	}
	return nil
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:         "version",
		Usage:        "print the versions of mnistgan, graft and libtensorflow",
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q (mnistgan version takes none)", c.Args().First())
			}
			w := c.App.Writer
			for _, v := range versions() {
				fmt.Fprintf(w, "%-14s %s\n", v[0], v[1])
			}
			return nil
		},
	}
}

// versions lists (component, version) pairs, in a stable order.
func versions() [][2]string {
	graft := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/wamuir/graft" {
				graft = dep.Version
			}
		}
	}
	return [][2]string{
		{"mnistgan", programVersion()},
		{"graft", graft},
		{"libtensorflow", tf.Version()},
	}
}

func versionMap() map[string]string {
	m := make(map[string]string)
	for _, v := range versions() {
		m[v[0]] = v[1]
	}
	return m
}

func programVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}
