// Command http-echo is the HTTP server of the opsmith testbed image
// opsmith.local/http-echo: it listens on $PORT (default 8080), answers
// GET / with a JSON object naming the host (the pod) that served it and
// /healthz with 200 ok, and shuts down gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Reply is the body of GET /.
type Reply struct {
	Hostname string `json:"hostname"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Remote   string `json:"remote"`
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	hostname := os.Getenv("HOSTNAME")
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			log.Fatalf("host name: %v", err)
		}
		hostname = h
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		log.Fatalf("listening: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, ln, hostname); err != nil {
		log.Fatal(err)
	}
}

// serve answers on ln until ctx ends, then lets requests in flight finish
// (for up to 10 s) and returns.
func serve(ctx context.Context, ln net.Listener, hostname string) error {
	srv := &http.Server{Handler: handler(hostname), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("http-echo listening on %s", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Print("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(hostname string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Reply{Hostname: hostname, Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr})
	})
	return mux
}
