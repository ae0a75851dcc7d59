package container

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"
)

// zeroTime is docker's rendering of a time that never happened.
const zeroTime = "0001-01-01T00:00:00Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// InspectDoc is docker's inspect document with the network fields older docker APIs had at
// the top of NetworkSettings (IPAddress, Gateway, MacAddress, IPPrefixLen of the first
// network): scripts still read `{{.NetworkSettings.IPAddress}}`.
type InspectDoc struct {
	*containertypes.InspectResponse
	NetworkSettings *LegacyNetworkSettings `json:"NetworkSettings"`
}

// LegacyNetworkSettings is NetworkSettings plus the legacy top-level fields.
type LegacyNetworkSettings struct {
	*containertypes.NetworkSettings
	Gateway     string `json:"Gateway"`
	IPAddress   string `json:"IPAddress"`
	IPPrefixLen int    `json:"IPPrefixLen"`
	MacAddress  string `json:"MacAddress"`
}

// Inspect builds docker's inspect document for a container.
func (m *Manager) Inspect(rec *Record) *InspectDoc {
	r := m.inspect(rec)
	ns := &LegacyNetworkSettings{NetworkSettings: r.NetworkSettings}
	if len(rec.Networks) > 0 {
		if es := r.NetworkSettings.Networks[rec.Networks[0].Name]; es != nil && es.IPAddress.IsValid() {
			ns.IPAddress, ns.Gateway, ns.IPPrefixLen = es.IPAddress.String(), es.Gateway.String(), es.IPPrefixLen
			ns.MacAddress = es.MacAddress.String()
		}
	}
	return &InspectDoc{InspectResponse: r, NetworkSettings: ns}
}

func (m *Manager) inspect(rec *Record) *containertypes.InspectResponse {
	st := m.Status(rec)
	path, args := commandOf(rec)
	s := &containertypes.State{
		Status:     containertypes.ContainerState(st.Status),
		Running:    st.Running(),
		Paused:     st.Status == "paused",
		Restarting: st.Status == "restarting",
		OOMKilled:  st.OOMKilled,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  fmtTime(st.StartedAt),
		FinishedAt: fmtTime(st.FinishedAt),
	}
	if s.Running {
		s.Pid = st.Pid
	}
	if h := st.State.Health; h != nil {
		hh := &containertypes.Health{Status: containertypes.HealthStatus(h.Status), FailingStreak: h.FailingStreak}
		for _, p := range h.Log {
			hh.Log = append(hh.Log, &containertypes.HealthcheckResult{Start: p.Start, End: p.End, ExitCode: p.ExitCode, Output: p.Output})
		}
		s.Health = hh
	}
	dir := m.dir(rec.ID)
	out := &containertypes.InspectResponse{
		ID:             rec.ID,
		Created:        fmtTime(rec.Created),
		Path:           path,
		Args:           args,
		State:          s,
		Image:          rec.Image,
		ResolvConfPath: dir + "/resolv.conf",
		HostnamePath:   dir + "/hostname",
		HostsPath:      dir + "/hosts",
		Name:           "/" + rec.Name,
		RestartCount:   st.RestartCount,
		Driver:         "overlay",
		Platform:       "linux",
		HostConfig:     rec.HostConfig,
		Config:         rec.Config,
		GraphDriver: &storage.DriverData{Name: "overlay", Data: map[string]string{
			"UpperDir":  m.Snapshots.UpperDir(rec.ID),
			"MergedDir": m.rootfs(rec.ID),
		}},
		NetworkSettings: m.networkSettings(rec, st.Running() || st.Status == "restarting"),
	}
	if rec.HostConfig.LogConfig.Type != "none" {
		out.LogPath = m.LogPath(rec.ID)
	}
	out.Mounts = []containertypes.MountPoint{}
	for _, mp := range rec.Mounts {
		out.Mounts = append(out.Mounts, containertypes.MountPoint{
			Type: mount.Type(mp.Type), Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			Driver: mp.Driver, Mode: mp.Mode, RW: mp.RW, Propagation: mount.Propagation(mp.Propagation),
		})
	}
	return out
}

// commandOf is the container's command as docker shows it: Path and Args.
func commandOf(rec *Record) (string, []string) {
	argv := append(append([]string{}, rec.Config.Entrypoint...), rec.Config.Cmd...)
	if len(argv) == 0 {
		return "", []string{}
	}
	return argv[0], append([]string{}, argv[1:]...)
}

// Command is the COMMAND column of `ps`.
func Command(rec *Record) string {
	p, a := commandOf(rec)
	return strings.TrimSpace(p + " " + strings.Join(a, " "))
}

// StatusText is the STATUS column of `ps`: "Up 5 seconds (healthy)", "Exited (0) 3 minutes ago".
func StatusText(st Status, now time.Time) string {
	switch st.Status {
	case "running", "paused":
		s := "Up " + units.HumanDuration(now.Sub(st.StartedAt))
		if st.Status == "paused" {
			s += " (Paused)"
		} else if h := st.State.Health; h != nil {
			if h.Status == "starting" {
				s += " (health: starting)"
			} else {
				s += " (" + h.Status + ")"
			}
		}
		return s
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case "exited":
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	}
	return "Created"
}
