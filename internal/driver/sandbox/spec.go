package sandbox

// spec is everything the init helper needs to build one instance's
// sandbox. The server computes it; the helper only carries it out, so that
// the helper stays small and the plan testable. It travels as JSON on the
// helper's fd 5, followed, when the function is known, by a runSpec: none
// of the sandbox depends on the function (its code and layers are mounted
// into it later, from the host), so a spare sandbox's helper builds it all
// before it is needed.
type spec struct {
	// Root is an empty directory the helper mounts the new root on. Any
	// directory will do: the helper has its own mount namespace.
	Root     string     `json:"root"`
	Hostname string     `json:"hostname"`
	Dirs     []string   `json:"dirs,omitempty"`     // created in the new root, 0755
	Symlinks []symlink  `json:"symlinks,omitempty"` // created in the new root
	Files    []file     `json:"files,omitempty"`    // written in the new root
	Binds    []bindSpec `json:"binds"`              // mounted in order
	Masks    []mask     `json:"masks,omitempty"`    // mounted after the binds (packages.go)
	TmpBytes int64      `json:"tmpBytes"`           // size of the private /tmp

	Loopback bool `json:"loopback"` // bring lo up: the instance has its own network namespace
	Seccomp  bool `json:"seccomp"`  // load the filter

	UID       int      `json:"uid"`
	GID       int      `json:"gid"`
	SetGroups bool     `json:"setGroups"` // clear supplementary groups (not allowed in a user namespace)
	Rlimits   []rlimit `json:"rlimits,omitempty"`
}

// runSpec is what to run, inside the sandbox: the second message on fd 5.
// An empty Path only reports that every step worked (the probe at
// start-up).
type runSpec struct {
	// Hold: run nothing, but hold the sandbox as its init for a worker
	// that joins it from outside (the Python zygote's).
	Hold bool     `json:"hold,omitempty"`
	Path string   `json:"path,omitempty"`
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
}

// bindSpec mounts Src from the host at Dst inside the new root, read-only
// unless RW. A file is bound onto an empty file, a directory onto a
// directory.
type bindSpec struct {
	Src string `json:"src"`
	Dst string `json:"dst"`
	RW  bool   `json:"rw,omitempty"`
}

type symlink struct {
	Target string `json:"target"`
	Path   string `json:"path"`
}

type file struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    uint32 `json:"mode"`
}

type rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// helperStatus is what the helper reports on its status pipe (fd 6), one
// JSON object per line: that its sandbox is ready, then an error that
// stopped it, that the probe passed, or how the interpreter ended.
type helperStatus struct {
	Ready bool        `json:"ready,omitempty"` // the sandbox is built: it waits for what to run
	Error string      `json:"error,omitempty"`
	Probe bool        `json:"probe,omitempty"`
	Exit  *helperExit `json:"exit,omitempty"`
	// ShellExit is the init shell's report: an exit code, or 128 plus the
	// number of the signal that killed the interpreter.
	ShellExit *int `json:"shellExit,omitempty"`
}

type helperExit struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}
