// Command hearth is Hearth's one binary: `hearth server` keeps and serves
// profiles and events, `hearth agent` profiles a host with eBPF, `hearth
// push` sends pprof files to a server, `hearth query` asks one about
// profiles and `hearth events` about events.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: hearth <command> [flags]

commands:
  server   keep profiles and events and serve the API on :4040
  agent    profile every process on this host with eBPF and push to a server
  push     send pprof files to a server
  query    query a server: flame graph, top table, series, pprof
  events   query a server's events: group by, calculations, traces, compare

Run 'hearth <command> -h' for a command's flags, 'hearth --version' for
the version.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code for a failure already explained.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "server":
		err = runServer(ctx, args[1:], stderr)
	case "push":
		err = runPush(ctx, args[1:], stdout)
	case "query":
		err = runQuery(ctx, args[1:], stdout, stderr)
	case "events":
		err = runEvents(ctx, args[1:], stdout, stderr)
	case "agent":
		err = runAgent(ctx, args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	default:
		fmt.Fprintf(stderr, "hearth: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "hearth %s: %s\n", args[0], oneLine(err.Error()))
	return 1
}

// onHangup calls f on every SIGHUP until ctx is done or the returned stop
// is called; the signal then takes its default action again.
func onHangup(ctx context.Context, f func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-hup:
				f()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseInterleaved parses flags that may come after positional arguments,
// as in `hearth push a.pb.gz --server URL`, and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format: %q is not text or json", format)
}

// durationFlag is a flag.Value for durations that also takes days and
// weeks: 30d, 2w.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	mult := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		mult = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		mult = 7 * 24 * time.Hour
	}
	if mult != 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a duration like 12h, 30d or 2w", s)
		}
		*f.d = time.Duration(n * float64(mult))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration like 12h, 30d or 2w", s)
	}
	*f.d = d
	return nil
}
