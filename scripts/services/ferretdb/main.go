// Command strata-ferretdb runs FerretDB (embeddable package, SQLite backend) for scripts/services.sh.
//
// FerretDB's own cmd/ferretdb, built with `go install`, panics at start-up asking for a generated
// build/version/version.txt; the embeddable package has no such requirement, so this wrapper is
// what the services script builds.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("sqlite-dir", "", "directory holding the SQLite databases (created if missing)")
	level := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()

	if *dir == "" {
		fmt.Fprintln(os.Stderr, "strata-ferretdb: -sqlite-dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata-ferretdb: sqlite dir %s: %v\n", *dir, err)
		os.Exit(1)
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "strata-ferretdb: -log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	f, err := ferretdb.New(&ferretdb.Config{
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata-ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	go func() {
		// MongoDBURI waits for the listener to be bound.
		logger.Info("strata-ferretdb ready", "uri", f.MongoDBURI())
	}()

	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "strata-ferretdb: %v\n", err)
		os.Exit(1)
	}
}
