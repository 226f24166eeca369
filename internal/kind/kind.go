// Package kind is how a controller describes itself to the manager: its
// name, the API types it adds to the scheme, the child types it reads from
// the cache, its command-line flags and how it is set up. The manager
// (internal/manager) loops over one list of these, so that adding a kind
// is one line there plus the kind's own package; nothing else in the
// manager names a kind.
package kind

import (
	"flag"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
)

// Kind describes one controller.
type Kind struct {
	// Name is the controller's name: the value of --controllers, and its
	// name in logs and metrics.
	Name string
	// AddToScheme adds the controller's own API types and any other
	// types it reads or writes that client-go's scheme lacks.
	AddToScheme func(*runtime.Scheme) error
	// Children lists the types of the objects the controller creates
	// and reads from the cache (one empty object per type). The manager
	// caches only objects of these types that carry opsmith's
	// app.kubernetes.io/managed-by label: a type missing here would make
	// the cache hold every object of it in the cluster (every Secret, for
	// example), and any object opsmith writes must carry the label.
	Children []client.Object
	// Flags binds the controller's own command-line flags (named
	// <kind>-<setting>), or is nil when it has none.
	Flags func(*flag.FlagSet)
	// Setup registers the controller with the manager.
	Setup func(Env) error
}

// Env is what the manager hands every controller it sets up.
type Env struct {
	Manager ctrl.Manager
	// Controller holds the options every controller runs with
	// (concurrency).
	Controller controller.Options
	// StatusProgressDelay is how long a status that reports only
	// progress may be held back (apply.Pacer), for controllers that pace
	// their status writes.
	StatusProgressDelay time.Duration
}
