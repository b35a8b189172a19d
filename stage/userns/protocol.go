package userns

// The protocol between Run (host side) and Init (namespace side).
//
// Run starts /proc/self/exe in the new namespaces with envStage set and three
// extra files:
//
//	fd 3  config: one JSON config, then EOF
//	fd 4  sync and lifeline: Run writes one byte once the id maps are
//	      written and keeps the pipe open until the namespace is gone; EOF
//	      means Run's process died
//	fd 5  reports: JSON lines from the namespace's init, one per file or
//	      directory it created on the stage (before creating it, so that a
//	      SIGKILL cannot hide one) and a final one with Done set
//	fd 6  carry: a unix socket (SOCK_SEQPACKET) on which Run passes the
//	      descriptors of the carried mounts before the sync byte and, with
//	      KeepMounts, init passes back the mounts it keeps (carry.go)
//
// Unprivileged, the child starts in stage "wait": its execve ran before its
// uid was mapped, so it has no capabilities. It waits on fd 4 for the maps
// and re-executes itself in stage "setup", which gives it all capabilities
// of the namespace's root. As root, Go writes the identity maps itself before
// the execve and the child starts directly in stage "setup".

const (
	envStage   = "_VMDB2_USERNS_STAGE"
	stageWait  = "wait"
	stageSetup = "setup"
	initArgv0  = "vmdb2-userns-init"

	fdConfig = 3
	fdSync   = 4
	fdReport = 5
	fdCarry  = 6
)

// config is what Run sends to the namespace's init: a checked Cmd with
// absolute paths.
type config struct {
	Root       string   `json:"root,omitempty"`
	RootDev    uint64   `json:"root_dev,omitempty"` // the directory Run opened at Root
	RootIno    uint64   `json:"root_ino,omitempty"`
	Argv       []string `json:"argv,omitempty"`
	Helper     string   `json:"helper,omitempty"`
	HelperArgs []string `json:"helper_args,omitempty"`
	Env        []string `json:"env"`
	Dir        string   `json:"dir"`
	Virtual    bool     `json:"virtual,omitempty"`
	Binds      []Bind   `json:"binds,omitempty"`
	Hostname   string   `json:"hostname"`

	Tree        string        `json:"tree,omitempty"`
	MountPoints []string      `json:"mount_points,omitempty"`
	Carried     []carriedInfo `json:"carried,omitempty"`
	KeepMounts  bool          `json:"keep_mounts,omitempty"`
}

// report is one line written by the namespace's init on fd 5.
type report struct {
	// Created is a path inside Root that init is about to create on the
	// stage (as the command would name it: Run resolves it inside the
	// stage again); Dir says it is a directory; Policy that it is
	// policy-rc.d.
	Created string `json:"created,omitempty"`
	Dir     bool   `json:"dir,omitempty"`
	Policy  bool   `json:"policy,omitempty"`
	// Lent says Created is not created but an existing file (the stage's
	// resolv.conf) whose content init replaces for the command.
	Lent *lentFile `json:"lent,omitempty"`

	// Done marks the final report.
	Done        bool   `json:"done,omitempty"`
	Exit        int    `json:"exit,omitempty"`
	Signal      int    `json:"signal,omitempty"`
	SetupError  string `json:"setup_error,omitempty"`
	HelperError string `json:"helper_error,omitempty"`
	// Kept says the mounts to keep were all passed on fd 6; KeepError why
	// they could not be.
	Kept      bool   `json:"kept,omitempty"`
	KeepError string `json:"keep_error,omitempty"`
}

// lentFile is what it takes to give a lent file its own content back.
type lentFile struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Own   []byte `json:"own"`
	Lent  []byte `json:"lent"`
	Atime int64  `json:"atime"`
	Mtime int64  `json:"mtime"`
}

// policyRcD is the /usr/sbin/policy-rc.d placed in a stage by Virtual.
const policyRcD = "#!/bin/sh\n# Written by vmdb2 for the duration of a step: start no services.\nexit 101\n"
