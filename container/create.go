package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/container/opts"
	"github.com/berth-dev/berth/container/spec"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	"github.com/berth-dev/berth/volume"
)

// CreateOptions is what `create`/`run` decided from the command line.
type CreateOptions struct {
	Name       string
	Config     *containertypes.Config // Image is the reference as the user gave it
	HostConfig *containertypes.HostConfig
	Image      *image.Image
	ImageCfg   *v1.ConfigFile
	Network    NetworkOptions // --network-alias, --ip, --mac-address
}

// Create makes a container record, its snapshot and its volumes. On error nothing is left.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (_ *Record, err error) {
	cfg, hc := o.Config, o.HostConfig
	if hc == nil {
		hc = &containertypes.HostConfig{}
	}
	spec.Merge(cfg, o.ImageCfg.Config)
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		return nil, fmt.Errorf("%w: no command specified", ErrStart)
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Type != "json-file" && hc.LogConfig.Type != "none" {
		return nil, fmt.Errorf("log driver %q is not supported: use json-file or none", hc.LogConfig.Type)
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	rec := &Record{
		ID:         newID(),
		Created:    time.Now().UTC(),
		Image:      o.Image.ID(),
		Config:     cfg,
		HostConfig: hc,
		Chain:      string(o.Image.TopChainID()),
	}
	if err := m.resolveNetwork(rec, o.Network); err != nil {
		return nil, err
	}
	if cfg.Hostname == "" && hc.NetworkMode != "host" {
		cfg.Hostname = rec.ID[:12]
	}
	if hc.NetworkMode == "host" && cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	dir := m.dir(rec.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	// Held until the record is written: a listing reclaims a directory without a record only
	// when no create holds it (see reclaim).
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The directory exists before the name points at it: reserveName takes a name whose
	// owner has no directory for a leftover of a crash.
	if o.Name != "" {
		if err := m.reserveName(o.Name, rec.ID); err != nil {
			return nil, err
		}
		rec.Name = o.Name
	} else {
		for i := 0; ; i++ {
			rec.Name = randomName(i)
			err := m.reserveName(rec.Name, rec.ID)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrNameInUse) || i > 20 {
				return nil, err
			}
		}
	}
	undo = append(undo, func() { m.releaseName(rec.Name, rec.ID) })
	if err := os.MkdirAll(filepath.Join(dir, "bundle", "rootfs"), 0o711); err != nil {
		return nil, err
	}
	// A --rm container is gone after a crash anyway: its create skips the disk flushes.
	var popts []snapshot.PrepareOpt
	if hc.AutoRemove {
		popts = append(popts, snapshot.NoSync())
	}
	if err := m.Snapshots.Prepare(ctx, rec.ID, digest.Digest(rec.Chain), popts...); err != nil {
		return nil, err
	}
	undo = append(undo, func() { m.Snapshots.RemoveActive(context.Background(), rec.ID) })
	if rec.Mounts, err = m.resolveMounts(ctx, rec); err != nil {
		return nil, err
	}
	undo = append(undo, func() { m.releaseVolumes(rec, true) })
	if err := m.writeRecord(rec); err != nil {
		return nil, err
	}
	m.event(rec, "create", nil)
	return rec, nil
}

// resolveMounts turns -v, --mount, --tmpfs and the image's VOLUMEs into mount points,
// creating named and anonymous volumes (referenced by this container) and, for -v only,
// missing host directories (docker's rule; --mount refuses a missing source).
func (m *Manager) resolveMounts(ctx context.Context, rec *Record) (mps []MountPoint, err error) {
	hc := rec.HostConfig
	var specs []mount.Mount
	fromBinds := map[string]bool{}
	for _, b := range hc.Binds {
		mt, err := opts.ParseVolume(b)
		if err != nil {
			return nil, err
		}
		fromBinds[mt.Target] = true
		specs = append(specs, mt)
	}
	specs = append(specs, hc.Mounts...)
	seen := map[string]bool{}
	defer func() {
		if err != nil {
			m.releaseVolumes(&Record{ID: rec.ID, Mounts: mps}, true)
			mps = nil
		}
	}()
	for _, mt := range specs {
		dst := path.Clean(mt.Target)
		if seen[dst] {
			return mps, fmt.Errorf("duplicate mount point: %s", dst)
		}
		seen[dst] = true
		mp := MountPoint{Destination: dst, RW: !mt.ReadOnly, Type: string(mt.Type)}
		if !mp.RW {
			mp.Mode = "ro"
		}
		switch mt.Type {
		case mount.TypeBind:
			src := filepath.Clean(mt.Source)
			if _, err := os.Stat(src); err != nil {
				if !fromBinds[mt.Target] || !errors.Is(err, os.ErrNotExist) {
					return mps, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s", src)
				}
				if err := os.MkdirAll(src, 0o755); err != nil {
					return mps, fmt.Errorf("create bind source %s: %w", src, err)
				}
			}
			mp.Source = src
			mp.Propagation = "rprivate"
			if mt.BindOptions != nil && mt.BindOptions.Propagation != "" {
				mp.Propagation = string(mt.BindOptions.Propagation)
			}
		case mount.TypeVolume:
			v, err := m.useVolume(ctx, mt.Source, rec.ID, mt.VolumeOptions)
			if err != nil {
				return mps, err
			}
			mp.Name, mp.Source, mp.Driver, mp.Anonymous = v.Name, v.Mountpoint, "local", v.Anonymous
			mp.NoCopy = mt.VolumeOptions != nil && mt.VolumeOptions.NoCopy
			if mp.Mode == "" {
				mp.Mode = "z"
			}
		case mount.TypeTmpfs:
			mp.TmpfsOptions = tmpfsOptions(mt.TmpfsOptions)
		default:
			return mps, fmt.Errorf("mount type %q is not supported: use bind, volume or tmpfs", mt.Type)
		}
		mps = append(mps, mp)
	}
	for dst := range hc.Tmpfs {
		seen[path.Clean(dst)] = true
	}
	var vols []string
	for dst := range rec.Config.Volumes {
		vols = append(vols, dst)
	}
	sort.Strings(vols)
	for _, dst := range vols {
		dst = path.Clean(dst)
		if seen[dst] {
			continue
		}
		seen[dst] = true
		v, err := m.useVolume(ctx, "", rec.ID, nil)
		if err != nil {
			return mps, err
		}
		mps = append(mps, MountPoint{Type: "volume", Name: v.Name, Source: v.Mountpoint, Destination: dst,
			Driver: "local", RW: true, Anonymous: true})
	}
	return mps, nil
}

func tmpfsOptions(t *mount.TmpfsOptions) string {
	if t == nil {
		return ""
	}
	var o []string
	if t.SizeBytes > 0 {
		o = append(o, "size="+strconv.FormatInt(t.SizeBytes, 10))
	}
	if t.Mode != 0 {
		o = append(o, "mode="+strconv.FormatUint(uint64(t.Mode.Perm()|t.Mode&os.ModeSticky>>11), 8))
	}
	for _, kv := range t.Options {
		if len(kv) == 1 {
			o = append(o, kv[0])
		} else if len(kv) == 2 {
			o = append(o, kv[0]+"="+kv[1])
		}
	}
	s := ""
	for i, x := range o {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

// useVolume gets (creating if needed) a volume and records this container as a user.
func (m *Manager) useVolume(ctx context.Context, name, id string, vo *mount.VolumeOptions) (*volume.Volume, error) {
	var labels map[string]string
	if vo != nil {
		labels = vo.Labels
	}
	v, err := m.Volumes.Create(ctx, name, labels, nil, name == "")
	if err != nil {
		return nil, err
	}
	if err := m.Volumes.Ref(v.Name, id); err != nil {
		return nil, err
	}
	return v, nil
}

// releaseVolumes drops the container's references, and removes its anonymous volumes when
// asked (`rm -v`, `--rm`).
func (m *Manager) releaseVolumes(rec *Record, removeAnonymous bool) {
	for _, mp := range rec.Mounts {
		if mp.Type != "volume" {
			continue
		}
		m.Volumes.Unref(mp.Name, rec.ID)
		if removeAnonymous && mp.Anonymous {
			m.Volumes.Remove(context.Background(), mp.Name, false)
		}
	}
}

// ociStateDir is where the runtime keeps the container (for tests and cleanup checks).
func (m *Manager) ociStateDir(id string) string { return filepath.Join(m.RuntimeRoot, id) }
