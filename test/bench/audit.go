package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"
)

// auditEvent is the part of an API server audit event the benchmark reads.
type auditEvent struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
	} `json:"objectRef"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
}

// Requests counts API requests by "verb resource[/subresource]".
type Requests map[string]int

// Total is the number of requests counted.
func (r Requests) Total() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

// String lists the counts, largest first.
func (r Requests) String() string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r[keys[i]] > r[keys[j]] || (r[keys[i]] == r[keys[j]] && keys[i] < keys[j]) })
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf("%s=%d ", k, r[k])
	}
	return out
}

// writeVerbs are the verbs that change state.
var writeVerbs = map[string]bool{"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// Traffic is what one client sent in a time window, by kind of request.
type Traffic struct {
	// Writes are the requests that change objects the operator manages.
	Writes Requests `json:"writes"`
	// LeaderElection are lease writes and the leader's event in the
	// operator's namespace.
	LeaderElection Requests `json:"leader_election_writes"`
	// MetricsAuth are the TokenReviews and SubjectAccessReviews the
	// operator sends to authorize each scrape of its metrics (the
	// benchmark's own scrapes cause them).
	MetricsAuth Requests `json:"metrics_auth_requests"`
	// Reads are gets and lists (watches are long-lived and not counted).
	Reads Requests `json:"reads"`
}

// auditTraffic reads the audit log and sorts the requests that user sent
// between from and to. operatorNS is the operator's own namespace.
func auditTraffic(path, user, operatorNS string, from, to time.Time) (Traffic, error) {
	t := Traffic{Writes: Requests{}, LeaderElection: Requests{}, MetricsAuth: Requests{}, Reads: Requests{}}
	f, err := os.Open(path)
	if err != nil {
		return t, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		var e auditEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return t, fmt.Errorf("audit log line: %w", err)
		}
		if e.User.Username != user || e.RequestReceived.Before(from) || !e.RequestReceived.Before(to) {
			continue
		}
		t.add(e, operatorNS)
	}
	return t, s.Err()
}

// add counts one request in its kind.
func (t Traffic) add(e auditEvent, operatorNS string) {
	res, ns := "", ""
	if e.ObjectRef != nil {
		res, ns = e.ObjectRef.Resource, e.ObjectRef.Namespace
		if e.ObjectRef.Subresource != "" {
			res += "/" + e.ObjectRef.Subresource
		}
	}
	key := e.Verb + " " + res
	switch {
	case !writeVerbs[e.Verb]:
		if e.Verb == "get" || e.Verb == "list" {
			t.Reads[key]++
		}
	case res == "tokenreviews" || res == "subjectaccessreviews":
		t.MetricsAuth[key]++
	case res == "leases" || (res == "events" && ns == operatorNS):
		t.LeaderElection[key]++
	default:
		t.Writes[key]++
	}
}
