// Package monitor is the container supervisor (berth's conmon). By default one process per
// data root, the hub (hub.go), runs one supervisor per running container; with
// BERTH_MONITOR_HUB=0 each container gets a monitor process of its own, as below. Either way
// it is started by the CLI and outlives it. It must stay lean (see cmd/berth-monitor):
// standard library only, no package-level init work.
//
// # Life of a monitor
//
//	CLI: writes <ctr>/monitor.json, starts `berth-monitor <ctr>/monitor.json` in a new session with
//	     stdin/stdout/stderr on /dev/null and fd 3 = one end of a unix socketpair (the sync socket).
//	monitor: becomes a child subreaper; listens on <ctr>/attach.sock; makes the container's stdio
//	     (three pipes, or for Terminal a console socket that receives the pty master);
//	     runs `<Runtime> --root <RuntimeRoot> --log <ctr>/runtime.log --log-format json create
//	     --bundle <Bundle> --pid-file <ctr>/pid [--console-socket <ctr>/console.sock] <ID>` with the
//	     container's stdio; sends on fd 3 SyncMsg{Pid} (or SyncMsg{Error} and exits 1).
//	CLI: (attaches if it wants the output) then sends SyncMsg{Start: true} on fd 3 (closing fd 3
//	     without it makes the monitor delete the created container and exit).
//	monitor: starts the container (`<Runtime> ... start <ID>`), writes State{Status: running},
//	     sends SyncMsg{Started: true} (or SyncMsg{Error}) and closes fd 3.
//	     From then on it copies the container's output to the log (json-file, rotated) and to
//	     attach clients, feeds stdin from attach clients, runs health checks, and reaps.
//	exit: on the init's exit it reads the cgroup's OOM-kill count (OOMFiles), runs `<Runtime>
//	     delete --force <ID>`, and writes State{Status: exited, ExitCode, OOMKilled, FinishedAt}.
//	     Then the restart policy: unless <ctr>/stopped exists (the CLI's `stop`/`kill` wrote it),
//	     "always", "unless-stopped" and "on-failure" (exit code != 0, at most MaxRetries) restart
//	     after docker's back-off (100 ms, doubling, at most 1 min; reset to 100 ms when the
//	     container ran at least 10 s): State{Status: restarting, RestartCount+1}, create + start
//	     again. Otherwise it sends FrameExit to every attach client, runs ExitCommand (the CLI's
//	     cleanup: unmount, --rm removal; its output goes to <ctr>/cleanup.log) unless a client
//	     that said Cleanup in its Hello is still connected and finishes first (see Hello), and
//	     exits.
//
// # Attach protocol (<ctr>/attach.sock, SOCK_STREAM)
//
// The client first sends one JSON Hello terminated by '\n'. Then both sides send frames:
// 1 byte type, 4 bytes big-endian payload length, payload.
//
//	monitor -> client: FrameAttached (first, once registered), FrameStdout, FrameStderr (raw
//	                   bytes; with a terminal all output is FrameStdout), FrameExit (JSON
//	                   ExitMsg, last frame; the monitor then closes)
//	client -> monitor: FrameStdin (raw bytes), FrameStdinClose (empty: close the container's
//	                   stdin, once the last stdin-writing client sent it or disconnected and
//	                   Config.StdinOnce is set), FrameResize (JSON Resize)
//
// A client that connects after the container exited gets FrameExit at once. A Hello with
// Wait only (no streams) is how `berth wait` waits.
package monitor

import "time"

// Config is the monitor's whole input (<ctr>/monitor.json).
type Config struct {
	ID          string   `json:"id"`
	Runtime     string   `json:"runtime"`      // path of berth-runtime
	RuntimeRoot string   `json:"runtime_root"` // its --root
	Bundle      string   `json:"bundle"`
	Dir         string   `json:"dir"` // the container's directory (<ctr> above)
	Terminal    bool     `json:"terminal"`
	OpenStdin   bool     `json:"open_stdin"` // -i: the container's stdin is a pipe fed by attach clients
	StdinOnce   bool     `json:"stdin_once"` // close the container's stdin when the first stdin client detaches
	LogPath     string   `json:"log_path"`   // json-file log ("" = no log)
	LogMaxSize  int64    `json:"log_max_size,omitempty"`
	LogMaxFile  int      `json:"log_max_file,omitempty"` // files kept, counting the live one (docker's max-file)
	Restart     Restart  `json:"restart"`
	Health      *Health  `json:"health,omitempty"`
	OOMFiles    []string `json:"oom_files,omitempty"`    // cgroup files holding "oom_kill N" (v1 memory.oom_control, v2 memory.events)
	ExitCommand []string `json:"exit_command,omitempty"` // run after the container exited for good
	EventsLog   string   `json:"events_log,omitempty"`   // append Event lines here (die, oom, health_status, restart)
	Name        string   `json:"name,omitempty"`         // for events
	Image       string   `json:"image,omitempty"`        // for events
	// HeldFds is how many descriptors after the sync socket (4, 5, ...) the monitor keeps
	// open for the container's life without using them: the sockets that reserve its
	// published host ports.
	HeldFds int `json:"held_fds,omitempty"`
}

// Restart is the restart policy.
type Restart struct {
	Name       string `json:"name"` // "", "no", "always", "unless-stopped", "on-failure"
	MaxRetries int    `json:"max_retries,omitempty"`
}

// Health is the health check: Test is run with `<Runtime> exec` in the container.
type Health struct {
	Test        []string      `json:"test"` // argv (CMD-SHELL already expanded to /bin/sh -c)
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"`
	Retries     int           `json:"retries"`
}

// State is <ctr>/state.json.
type State struct {
	Status       string `json:"status"` // created | running | restarting | exited
	Pid          int    `json:"pid,omitempty"`
	PidStart     uint64 `json:"pid_start,omitempty"` // /proc/<pid>/stat start time
	MonitorPid   int    `json:"monitor_pid,omitempty"`
	MonitorStart uint64 `json:"monitor_start,omitempty"`
	// MonitorLock is a file the supervisor of this run holds an exclusive flock on while it
	// lives (a hub serves several containers, so its pid says nothing of one of them);
	// MonitorID names that supervisor (the exit command passes it back).
	MonitorLock  string       `json:"monitor_lock,omitempty"`
	MonitorID    string       `json:"monitor_id,omitempty"`
	StartedAt    time.Time    `json:"started_at"`
	FinishedAt   time.Time    `json:"finished_at"`
	ExitCode     int          `json:"exit_code"`
	OOMKilled    bool         `json:"oom_killed,omitempty"`
	Error        string       `json:"error,omitempty"`
	RestartCount int          `json:"restart_count"`
	Health       *HealthState `json:"health,omitempty"`
}

// HealthState is docker's State.Health.
type HealthState struct {
	Status        string        `json:"Status"` // starting | healthy | unhealthy
	FailingStreak int           `json:"FailingStreak"`
	Log           []HealthProbe `json:"Log"` // the last 5 probes
}

// HealthProbe is one health check run.
type HealthProbe struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"` // at most 4 KiB
}

// SyncMsg travels on the sync socket (fd 3), one JSON object per line.
type SyncMsg struct {
	Pid     int    `json:"pid,omitempty"`
	Start   bool   `json:"start,omitempty"`
	Started bool   `json:"started,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Hello is the first line an attach client sends.
type Hello struct {
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// Cleanup: this client (a foreground `run`) runs the cleanup itself after FrameExit; the
	// monitor runs ExitCommand only if the client disconnects before <ctr>/cleaned exists.
	Cleanup bool `json:"cleanup,omitempty"`
}

// Frame types of the attach protocol.
const (
	FrameStdin      byte = 0
	FrameStdout     byte = 1
	FrameStderr     byte = 2
	FrameExit       byte = 3
	FrameStdinClose byte = 4
	FrameResize     byte = 5
	// FrameAttached (monitor -> client, empty) is the first frame once the client is
	// registered; a foreground run waits for it before the container starts.
	FrameAttached byte = 6
)

// ExitMsg is the payload of FrameExit.
type ExitMsg struct {
	ExitCode  int  `json:"exit_code"`
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// Resize is the payload of FrameResize.
type Resize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Event is one line of the engine's events.log (docker's event shape, flattened).
type Event struct {
	Time       int64             `json:"timeNano"`
	Type       string            `json:"Type"`   // "container"
	Action     string            `json:"Action"` // create, start, die, oom, destroy, restart, health_status: healthy, ...
	ID         string            `json:"id"`
	Attributes map[string]string `json:"attributes,omitempty"` // name, image, exitCode
}
