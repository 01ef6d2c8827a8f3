// go-sessions: a session service in Go's standard library whose session map
// never forgets a session (no expiry, no bound): the leak, in the runtime and
// heap profiler a Go service really has. clw-cli's real-service tests
// (loadgen/tests/it/real_services.rs) drive it over loopback and must name
// (*store).insert from its /debug/pprof/heap as the top growth site.
//
// Flags: -addr 127.0.0.1:PORT (loopback only).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // /debug/pprof/heap: gzipped pprof protobuf, symbols embedded
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The password of clw-cli's default [users] pool (user-N).
const password = "clw-load-test"

// Bytes of per-session data (claims, as a real session keeps), so each
// login's growth is large enough to see in a heap profile.
const sessionPayload = 512

var userName = regexp.MustCompile(`^user-[0-9]+$`)

type session struct {
	user    string
	created time.Time
	claims  []byte
}

// store is the session map. Sessions are never expired: every login adds one
// for good.
type store struct {
	mu sync.Mutex
	m  map[string]*session
}

// insert creates a session for user and returns its token. Everything a
// session keeps is allocated here (token, copy of the name, claims, the map's
// entry), so a heap profile charges the leak's growth to this function.
func (s *store) insert(user string) string {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	token := hex.EncodeToString(raw)
	sess := &session{
		user:    strings.Clone(user),
		created: time.Now(),
		claims:  make([]byte, sessionPayload),
	}
	copy(sess.claims, token)
	s.mu.Lock()
	s.m[token] = sess
	s.mu.Unlock()
	return token
}

func (s *store) get(token string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[token]
	return sess, ok
}

func (s *store) remove(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[token]
	delete(s.m, token)
	return ok
}

func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

type server struct {
	sessions store
	logins   atomic.Uint64
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// credentials reads username and password from a JSON or a form body.
func credentials(r *http.Request) (string, string, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&body); err != nil {
			return "", "", err
		}
		return body.Username, body.Password, nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		return "", "", err
	}
	return r.PostForm.Get("username"), r.PostForm.Get("password"), nil
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	user, pass, err := credentials(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad body: " + err.Error()})
		return
	}
	if !userName.MatchString(user) || pass != password {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad username or password"})
		return
	}
	token := s.sessions.insert(user)
	s.logins.Add(1)
	http.SetCookie(w, &http.Cookie{Name: "sid", Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// token reads the session token: the sid cookie or Authorization: Bearer.
func token(r *http.Request) string {
	if c, err := r.Cookie("sid"); err == nil {
		return c.Value
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimPrefix(h, "Bearer ")
	}
	return ""
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.get(token(r))
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"username": sess.user, "created": sess.created.UTC().Format(time.RFC3339)})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.sessions.remove(token(r)) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "sid", Value: "", Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// rssBytes reads the resident set from /proc/self/statm (pages).
func rssBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0, false
	}
	return resident * uint64(os.Getpagesize()), true
}

// metrics writes the Prometheus text format (version 0.0.4) by hand from
// runtime.ReadMemStats, with the names client_golang's Go collector uses, so
// no module has to be downloaded.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	gauge := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", m.HeapInuse)
	gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", m.HeapAlloc)
	gauge("go_memstats_heap_objects", "Number of allocated objects.", m.HeapObjects)
	gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", m.Sys)
	gauge("go_goroutines", "Number of goroutines that currently exist.", uint64(runtime.NumGoroutine()))
	fmt.Fprintf(w, "# HELP go_gc_cycles_total Number of completed GC cycles.\n# TYPE go_gc_cycles_total counter\ngo_gc_cycles_total %d\n", m.NumGC)
	if rss, ok := rssBytes(); ok {
		gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss)
	}
	gauge("sessions_active", "Sessions in the session map.", uint64(s.sessions.len()))
	fmt.Fprintf(w, "# HELP logins_total Successful logins.\n# TYPE logins_total counter\nlogins_total %d\n", s.logins.Load())
}

// only answers 405 to other methods (Debian's Go 1.19 mux has no method
// patterns).
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + method})
			return
		}
		h(w, r)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback)")
	flag.Parse()
	// Sample about one allocation per 4 KiB instead of 512 KiB, so the heap
	// profile sees a session's few hundred bytes.
	runtime.MemProfileRate = 4096

	s := &server{sessions: store{m: make(map[string]*session)}}
	mux := http.DefaultServeMux // net/http/pprof registered its handlers here
	mux.HandleFunc("/login", only("POST", s.login))
	mux.HandleFunc("/me", only("GET", s.me))
	mux.HandleFunc("/logout", only("POST", s.logout))
	mux.HandleFunc("/metrics", only("GET", s.metrics))
	ok := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/health", only("GET", ok))
	mux.HandleFunc("/ready", only("GET", ok)) // what clw-cli --spawn-server polls

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("go-sessions listening on %s", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
