package fn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latest names the draft of a function, what PUT changes: Lambda's
// $LATEST.
const Latest = "$LATEST"

// VersionName is "$LATEST" for the draft, else the version's number.
func (f *Function) VersionName() string {
	if f.Version == 0 {
		return Latest
	}
	return strconv.Itoa(f.Version)
}

// Limits of versions and aliases.
const (
	MaxAliasNameLen     = 128
	MaxDescriptionLen   = 256
	MaxAliasHistory     = 50 // moves kept per alias
	MaxAdditionalWeight = 1  // additional versions per alias (Lambda's)
)

// Version is a published version: an immutable snapshot of the draft.
// Its Function's Version field is its number.
type Version struct {
	*Function
	Description string `json:"description,omitempty"`
	// ConfigHash identifies what decides the version's behaviour (see
	// BehaviourHash): publishing a draft with the hash of the newest
	// version publishes nothing.
	ConfigHash  string    `json:"configHash"`
	PublishedAt time.Time `json:"publishedAt"`
}

// behaviour is what BehaviourHash covers: everything that decides what
// a call runs and how, and nothing about how it is reached or scaled.
type behaviour struct {
	Runtime   string            `json:"runtime"`
	Handler   string            `json:"handler"`
	Code      string            `json:"code"`
	Layers    []string          `json:"layers"`
	Build     *BuildSettings    `json:"build"`
	Env       map[string]string `json:"env"` // encoding/json sorts keys
	SecretEnv map[string]string `json:"secretEnv,omitempty"`
	Timeout   int               `json:"timeout"`
	Memory    int               `json:"memory"`
	Driver    string            `json:"driver"`
	Network   bool              `json:"network"`
	Conc      int               `json:"concurrency"`
}

// BehaviourHash is the SHA-256 of what decides f's behaviour: code and
// layers, runtime, handler, build settings, env (secret references by
// name: a secret's new value is not a new behaviour), timeout, memory,
// driver, network and concurrency.
func (f *Function) BehaviourHash() string {
	b, _ := json.Marshal(behaviour{
		Runtime: f.Runtime, Handler: f.Handler, Code: f.CodeSHA256(), Layers: f.Layers, Build: f.Build,
		Env: f.Env, SecretEnv: f.SecretEnv, Timeout: f.Timeout, Memory: f.Memory, Driver: f.Driver, Network: f.Network, Conc: f.Concurrency,
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Alias names a version of a function, and may send a share of its calls
// to a second version.
type Alias struct {
	FunctionID string `json:"functionId"`
	Name       string `json:"name"`
	// Version is the version the alias points at.
	Version int `json:"version"`
	// AdditionalVersionWeights sends each call to the version named by a
	// key with the probability of its value (0 < w < 1); the rest go to
	// Version.
	AdditionalVersionWeights map[string]float64 `json:"additionalVersionWeights,omitempty"`
	Description              string             `json:"description,omitempty"`
	// Rollout, while running, moves the alias step by step; it stays
	// after it ends, to say how it ended.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Revision counts the alias's changes (its ETag).
	Revision int `json:"revision"`
	// History lists the moves of the alias, oldest first, the newest
	// MaxAliasHistory of them.
	History   []AliasMove `json:"history,omitempty"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
}

// AliasMove is one change of where an alias points.
type AliasMove struct {
	At      time.Time          `json:"at"`
	Version int                `json:"version"`
	Weights map[string]float64 `json:"additionalVersionWeights,omitempty"`
	// Reason is "create", "update" or "rollback".
	Reason string `json:"reason"`
}

// aliasNameRE is an alias name: Lambda's, which may not be all digits
// (a version number) nor $LATEST.
var aliasNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// CheckAliasName validates an alias name.
func CheckAliasName(name string) error {
	if !aliasNameRE.MatchString(name) || len(name) > MaxAliasNameLen {
		return Invalid("name", fmt.Sprintf("%q is not an alias name (letters, digits, - and _, at most %d)", name, MaxAliasNameLen))
	}
	if _, err := strconv.Atoi(name); err == nil {
		return Invalid("name", fmt.Sprintf("%q is a version number, not an alias name", name))
	}
	return nil
}

// Normalize validates a: its name, version and weights. It does not
// check that the versions exist.
func (a *Alias) Normalize() error {
	if err := CheckAliasName(a.Name); err != nil {
		return err
	}
	if a.Version < 1 {
		return Invalid("version", "must name a published version (1 or more)")
	}
	if len(a.Description) > MaxDescriptionLen {
		return Invalid("description", fmt.Sprintf("at most %d bytes", MaxDescriptionLen))
	}
	if len(a.AdditionalVersionWeights) > MaxAdditionalWeight {
		return Invalid("additionalVersionWeights", fmt.Sprintf("at most %d additional version", MaxAdditionalWeight))
	}
	for k, w := range a.AdditionalVersionWeights {
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 || strconv.Itoa(n) != k {
			return Invalid("additionalVersionWeights", fmt.Sprintf("%q is not a version number", k))
		}
		if n == a.Version {
			return Invalid("additionalVersionWeights", fmt.Sprintf("version %d is the alias's own version", n))
		}
		if !(w > 0 && w < 1) {
			return Invalid("additionalVersionWeights", fmt.Sprintf("the weight of version %d must be above 0 and below 1", n))
		}
	}
	if len(a.AdditionalVersionWeights) == 0 {
		a.AdditionalVersionWeights = nil
	}
	return nil
}

// Versions lists the versions the alias sends calls to.
func (a *Alias) Versions() []int {
	out := []int{a.Version}
	for k := range a.AdditionalVersionWeights {
		if n, err := strconv.Atoi(k); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Pick chooses the version of one call: u is uniform in [0, 1).
func (a *Alias) Pick(u float64) int {
	keys := slices.Sorted(maps.Keys(a.AdditionalVersionWeights))
	for _, k := range keys {
		w := a.AdditionalVersionWeights[k]
		if u < w {
			n, _ := strconv.Atoi(k)
			return n
		}
		u -= w
	}
	return a.Version
}

// Move records a change of where a points, keeping the newest moves.
func (a *Alias) Move(at time.Time, reason string) {
	a.History = append(a.History, AliasMove{At: at, Version: a.Version, Weights: maps.Clone(a.AdditionalVersionWeights), Reason: reason})
	if n := len(a.History) - MaxAliasHistory; n > 0 {
		a.History = slices.Delete(a.History, 0, n)
	}
}

// ParseQualifier splits "name:qualifier" (a version number, an alias or
// $LATEST) into its parts; a bare name has the qualifier "".
func ParseQualifier(s string) (name, qualifier string) {
	name, qualifier, _ = strings.Cut(s, ":")
	return name, qualifier
}

// CheckQualifier validates what may follow "name:" where a function is
// named: "" (the draft), $LATEST, a version number or an alias name.
func CheckQualifier(field, q string) error {
	if q == "" || q == Latest {
		return nil
	}
	if n, err := strconv.Atoi(q); err == nil {
		if n < 1 || strconv.Itoa(n) != q {
			return Invalid(field, fmt.Sprintf("%q is not a version number", q))
		}
		return nil
	}
	if err := CheckAliasName(q); err != nil {
		return Invalid(field, fmt.Sprintf("%q is neither $LATEST, a version number nor an alias name", q))
	}
	return nil
}

// Rollout states.
const (
	RolloutRunning    = "running"
	RolloutCompleted  = "completed"
	RolloutRolledBack = "rolled-back"
	RolloutCancelled  = "cancelled" // the alias was moved by hand
)

// Limits of a rollout.
const (
	MaxRolloutSteps    = 20
	MinRolloutInterval = time.Second
	MaxRolloutInterval = 24 * time.Hour
)

// Rollout shifts an alias's calls to version To step by step: at each
// step To gets the step's share, for Interval; when To's error rate
// over a step exceeds MaxErrorRate the alias goes back to From by
// itself, and records why.
type Rollout struct {
	To           int       `json:"to"`
	Steps        []float64 `json:"steps"`
	Interval     string    `json:"interval"`
	MaxErrorRate float64   `json:"maxErrorRate"`
	// What the rollout has done: filled by the server.
	From          int       `json:"from,omitempty"`
	Step          int       `json:"step"`
	StepStartedAt time.Time `json:"stepStartedAt,omitempty"`
	State         string    `json:"state,omitempty"`
	Reason        string    `json:"reason,omitempty"`
}

// Running reports whether the rollout still moves its alias.
func (r *Rollout) Running() bool { return r != nil && r.State == RolloutRunning }

// Every is the rollout's step interval.
func (r *Rollout) Every() time.Duration {
	d, _ := time.ParseDuration(r.Interval)
	return d
}

// Check validates a rollout asked for.
func (r *Rollout) Check() error {
	if r.To < 1 {
		return Invalid("rollout.to", "must name a published version")
	}
	if len(r.Steps) == 0 || len(r.Steps) > MaxRolloutSteps {
		return Invalid("rollout.steps", fmt.Sprintf("1 to %d shares, like [0.1, 0.5, 1]", MaxRolloutSteps))
	}
	prev := 0.0
	for _, s := range r.Steps {
		if !(s > prev && s <= 1) {
			return Invalid("rollout.steps", "each share must be above the one before it and at most 1")
		}
		prev = s
	}
	if d, err := time.ParseDuration(r.Interval); err != nil || d < MinRolloutInterval || d > MaxRolloutInterval {
		return Invalid("rollout.interval", fmt.Sprintf("a duration from %s to %s, like \"5m\"", MinRolloutInterval, MaxRolloutInterval))
	}
	if !(r.MaxErrorRate >= 0 && r.MaxErrorRate <= 1) {
		return Invalid("rollout.maxErrorRate", "a share of calls from 0 to 1")
	}
	return nil
}

// Apply points a at the rollout's current step.
func (r *Rollout) Apply(a *Alias) {
	share := r.Steps[r.Step]
	if share >= 1 {
		a.Version, a.AdditionalVersionWeights = r.To, nil
		return
	}
	a.Version = r.From
	a.AdditionalVersionWeights = map[string]float64{strconv.Itoa(r.To): share}
}
