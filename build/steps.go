package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/sys/user"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/container/files"
	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/image/archive"
	"github.com/berth-dev/berth/snapshot"
)

// withRootfs gives fn a writable view of img (nil: empty) on a fresh active snapshot and
// returns the snapshot's key; the caller diffs and removes it (removeView).
func (b *builder) withRootfs(ctx context.Context, img *image.Image, fn func(rootfs string) error) (key string, err error) {
	key = randomKey("build-")
	chain := ""
	if img != nil {
		chain = string(img.TopChainID())
	}
	if err := b.d.Snapshots.Prepare(ctx, key, digestOf(chain), snapshot.NoSync()); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			b.d.Snapshots.RemoveActive(context.Background(), key)
		}
	}()
	if chain == "" {
		return key, fn(b.d.Snapshots.UpperDir(key))
	}
	mnt := filepath.Join(b.d.Root, "build", "mnt", key)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	defer os.Remove(mnt)
	if err := b.d.Snapshots.Mount(ctx, key, mnt); err != nil {
		return "", err
	}
	ferr := fn(mnt)
	if err := snapshot.Unmount(mnt); err != nil && ferr == nil {
		ferr = err
	}
	return key, ferr
}

// commitView commits the upper dir of active snapshot key as a layer on st and removes it.
func (b *builder) commitView(ctx context.Context, st *stageState, key, createdBy string) (*image.Image, error) {
	defer b.d.Snapshots.RemoveActive(context.Background(), key)
	pr, pw := io.Pipe()
	go func() {
		_, _, err := b.d.Snapshots.Diff(ctx, key, pw)
		pw.CloseWithError(err)
	}()
	img, err := archive.Commit(ctx, b.d.Images, b.d.Snapshots, st.img, st.cfg, pr, archive.CommitOptions{
		Config: st.config, CreatedBy: createdBy, Author: st.author,
	})
	pr.CloseWithError(errors.New("commit ended"))
	return img, err
}

// workdir: WORKDIR sets the working dir and creates it when missing (a layer, as docker).
func (b *builder) workdir(ctx context.Context, st *stageState, p string) error {
	wd := workdirPath(st.config.WorkingDir, p)
	st.config.WorkingDir = wd
	createdBy := "/bin/sh -c #(nop) WORKDIR " + wd
	key := cacheKey(parentID(st), "workdir", wd, fmt.Sprintf("%#v", st.config), st.author)
	if img := b.fromCache(key); img != nil {
		return b.advance(st, img, true)
	}
	created := false
	view, err := b.withRootfs(ctx, st.img, func(rootfs string) error {
		if _, err := files.StatPath(rootfs, wd+"/."); err == nil {
			return nil
		}
		created = true
		return pathrs.MkdirAll(rootfs, wd, 0o755)
	})
	if err != nil {
		return fmt.Errorf("WORKDIR %s: %w", wd, err)
	}
	var img *image.Image
	if created {
		img, err = b.commitView(ctx, st, view, createdBy)
	} else {
		b.d.Snapshots.RemoveActive(context.Background(), view)
		img, err = archive.Commit(ctx, b.d.Images, b.d.Snapshots, st.img, st.cfg, nil, archive.CommitOptions{
			Config: st.config, CreatedBy: createdBy, Author: st.author, EmptyLayer: true,
		})
	}
	if err != nil {
		return err
	}
	if err := b.cache.Put(key, img.ID()); err != nil {
		return err
	}
	return b.advance(st, img, false)
}

// copy runs COPY or ADD.
func (b *builder) copy(ctx context.Context, i int, st *stageState, sd instructions.SourcesAndDest, from, chown, chmod string, add bool, checksum string) error {
	name := "COPY"
	if add {
		name = "ADD"
	}
	if len(sd.SourceContents) > 0 && from != "" {
		return fmt.Errorf("%s --from=%s: a heredoc source cannot be combined with --from", name, from)
	}
	mode, err := parseChmod(chmod)
	if err != nil {
		return err
	}
	var remote []remoteFile
	if add {
		var local []string
		for _, src := range sd.SourcePaths {
			if !isURL(src) {
				local = append(local, src)
				continue
			}
			tmp, err := b.tmpDir("url-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			f, err := fetch(ctx, src, tmp, checksum)
			if err != nil {
				return fmt.Errorf("%s failed: %w", name, err)
			}
			remote = append(remote, f)
		}
		if checksum != "" && (len(remote) == 0 || len(local) > 0) {
			return fmt.Errorf("ADD --checksum=%s: a checksum can only be given for HTTP(S) sources", checksum)
		}
		sd.SourcePaths = local
	}
	root := srcRoot{dir: b.ctx.Dir, ctx: b.ctx}
	fromID := ""
	if from != "" {
		var fromImg *image.Image
		if j, ok := b.stageRef(from, i); ok {
			fromImg = b.results[j].img
		} else if _, isLater := instructions.HasStage(b.stages, from); isLater {
			return fmt.Errorf("%w: %s --from=%s refers to a later or the current stage", ErrNoStage, name, from)
		} else if fromImg, err = b.resolveImage(ctx, from); err != nil {
			return fmt.Errorf("%s --from=%s: %w", name, from, err)
		}
		if fromImg != nil {
			fromID = fromImg.ID()
		}
		view, err := b.withRootfs(ctx, fromImg, func(rootfs string) error {
			root = srcRoot{dir: rootfs}
			return b.copyFrom(ctx, st, root, sd, nil, chown, mode, add, name, from, fromID)
		})
		if view != "" {
			b.d.Snapshots.RemoveActive(context.Background(), view)
		}
		return err
	}
	return b.copyFrom(ctx, st, root, sd, remote, chown, mode, add, name, from, fromID)
}

func (b *builder) copyFrom(ctx context.Context, st *stageState, root srcRoot, sd instructions.SourcesAndDest, remote []remoteFile, chown string, mode *os.FileMode, add bool, name, from, fromID string) error {
	spec := &copySpec{Sources: sd.SourcePaths, Dest: sd.DestPath, Workdir: st.config.WorkingDir, Chmod: mode, Add: add, Remote: remote}
	var inline []string
	for _, c := range sd.SourceContents {
		spec.Inline = append(spec.Inline, inlineFile{Name: c.Path, Data: c.Data})
		inline = append(inline, c.Path, c.Data)
	}
	if chown != "" {
		if o, ok := numericOwner(chown); ok {
			spec.Chown = o
		} else {
			spec.Chown = &owner{} // names are resolved in the image below; the key has the text
		}
	}
	hash, err := writeCopy(root, spec, io.Discard)
	if err != nil {
		return fmt.Errorf("%s failed: %w", name, err)
	}
	dest, _ := spec.destPath()
	createdBy := fmt.Sprintf("/bin/sh -c #(nop) %s %s:%s in %s ", name, map[bool]string{true: "dir", false: "file"}[len(sd.SourcePaths) > 1 || strings.HasSuffix(sd.DestPath, "/")], hash, dest)
	key := cacheKey(parentID(st), "copy", name, strings.Join(sd.SourcePaths, "\x00"), strings.Join(inline, "\x00"), sd.DestPath, st.config.WorkingDir, chown, fmt.Sprint(mode), from, fromID, hash)
	if img := b.fromCache(key); img != nil {
		return b.advance(st, img, true)
	}
	view, err := b.withRootfs(ctx, st.img, func(rootfs string) error {
		if chown != "" {
			o, err := resolveOwner(rootfs, chown)
			if err != nil {
				return err
			}
			spec.Chown = o
		}
		if s, err := files.StatPath(rootfs, dest+"/."); err == nil && s.Mode.IsDir() {
			spec.DestIsDir = true
		}
		spec.Rootfs = rootfs
		pr, pw := io.Pipe()
		go func() {
			_, err := writeCopy(root, spec, pw)
			pw.CloseWithError(err)
		}()
		err := files.CopyIn(ctx, rootfs, "/", pr, files.CopyInOpts{CopyUIDGID: true, AllowOverwriteDirWithFile: true})
		pr.CloseWithError(errors.New("extract ended"))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s failed: %w", name, err)
	}
	img, err := b.commitView(ctx, st, view, createdBy)
	if err != nil {
		return err
	}
	if err := b.cache.Put(key, img.ID()); err != nil {
		return err
	}
	return b.advance(st, img, false)
}

func numericOwner(s string) (*owner, bool) {
	u, g, hasG := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		return nil, false
	}
	gid := uid
	if hasG {
		if gid, err = strconv.Atoi(g); err != nil {
			return nil, false
		}
	}
	return &owner{uid, gid}, true
}

// resolveOwner reads --chown's user[:group] with the image's /etc/passwd and /etc/group,
// both opened in-root.
func resolveOwner(rootfs, spec string) (*owner, error) {
	if o, ok := numericOwner(spec); ok {
		return o, nil
	}
	open := func(p string) io.Reader {
		real, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return strings.NewReader("")
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return strings.NewReader("")
		}
		return strings.NewReader(string(b))
	}
	u, g, hasG := strings.Cut(spec, ":")
	eu, err := user.GetExecUser(u, &user.ExecUser{}, open("/etc/passwd"), open("/etc/group"))
	if err != nil {
		return nil, fmt.Errorf("unable to convert uid/gid chown string to host mapping: %v", err)
	}
	o := &owner{eu.Uid, eu.Gid}
	if hasG {
		eg, err := user.GetExecUser("0:"+g, &user.ExecUser{}, open("/etc/passwd"), open("/etc/group"))
		if err != nil {
			return nil, fmt.Errorf("unable to convert uid/gid chown string to host mapping: %v", err)
		}
		o.GID = eg.Gid
	}
	return o, nil
}

// run executes RUN in an intermediate container and commits its changes.
func (b *builder) run(ctx context.Context, st *stageState, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return fmt.Errorf("%w: RUN --%s", ErrUnsupported, strings.Join(c.FlagsUsed, ", --"))
	}
	argv, script, err := b.runArgv(st, c)
	if err != nil {
		return err
	}
	args := st.runArgs(b.o.BuildArgs)
	createdBy := strings.Join(argv, " ")
	if len(args) > 0 {
		createdBy = "|" + strconv.Itoa(len(args)) + " " + strings.Join(args, " ") + " " + createdBy
	}
	key := cacheKey(parentID(st), "run", createdBy, fmt.Sprintf("%q", argv), st.author, script.name, script.data)
	if img := b.fromCache(key); img != nil {
		return b.advance(st, img, true)
	}
	if st.img == nil {
		return fmt.Errorf("RUN on an empty image (FROM scratch): there is no command to run")
	}
	// The container's environment: the build args, then the stage's ENV (which wins).
	env := slices.Clone(args)
	for _, kv := range st.config.Env {
		k, _, _ := strings.Cut(kv, "=")
		env = dropEnv(env, k)
		env = append(env, kv)
	}
	icfg := st.cfg.DeepCopy()
	icfg.Config = *st.config.DeepCopy()
	icfg.Config.Env = nil
	icfg.Config.Healthcheck = nil
	icfg.Config.Cmd, icfg.Config.Entrypoint = nil, nil
	cfg := &containertypes.Config{
		Cmd: argv, Entrypoint: []string{}, Env: env,
		User: st.config.User, WorkingDir: st.config.WorkingDir,
		AttachStdout: true, AttachStderr: true,
	}
	hc := &containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(b.o.Network)}
	if script.name != "" {
		// A heredoc with a shebang runs as a file, as BuildKit does: written to a scratch
		// directory mounted read-only at /dev/pipes (under the container's /dev tmpfs, so it
		// never lands in the step's layer).
		dir, err := b.tmpDir("heredoc-")
		if err != nil {
			return fmt.Errorf("RUN: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, script.name), []byte(script.data), 0o755); err != nil {
			return fmt.Errorf("RUN: %w", err)
		}
		hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: heredocDir, ReadOnly: true}}
	}
	m := b.d.Containers
	rec, err := m.Create(ctx, container.CreateOptions{Config: cfg, HostConfig: hc, Image: st.img, ImageCfg: icfg})
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	defer m.Remove(context.Background(), rec, true, true)
	fmt.Fprintf(b.out, " ---> Running in %s\n", rec.ShortID())
	code, err := b.runAttached(ctx, m, rec)
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	if code != 0 {
		return &RunError{Command: strings.Join(argv, " "), Code: code}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(m.Diff(ctx, rec, pw)) }()
	img, err := archive.Commit(ctx, b.d.Images, b.d.Snapshots, st.img, st.cfg, pr, archive.CommitOptions{
		Config: st.config, CreatedBy: createdBy, Author: st.author,
	})
	pr.CloseWithError(errors.New("commit ended"))
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "Removing intermediate container %s\n", rec.ShortID())
	if err := b.cache.Put(key, img.ID()); err != nil {
		return err
	}
	return b.advance(st, img, false)
}

// heredocDir is where a RUN heredoc with a shebang is mounted (BuildKit's place for it).
const heredocDir = "/dev/pipes"

// heredocScript is a RUN heredoc executed as a file; name is empty for other RUNs.
type heredocScript struct{ name, data string }

// runArgv is the command line of a RUN, heredocs applied with BuildKit's rules: a lone
// heredoc (RUN <<EOF) runs its text with the shell, or as a file when it starts with "#!";
// heredocs inside a longer command (RUN cat <<A > f) are handed to the shell whole.
func (b *builder) runArgv(st *stageState, c *instructions.RunCommand) ([]string, heredocScript, error) {
	if len(c.Files) == 0 {
		return b.shellWords(st, c.ShellDependantCmdLine), heredocScript{}, nil
	}
	if len(c.CmdLine) != 1 || !c.PrependShell {
		return nil, heredocScript{}, fmt.Errorf("RUN: parsing produced an invalid heredoc command: %q", c.CmdLine)
	}
	line := c.ShellDependantCmdLine
	line.Files = nil
	if h := parser.MustParseHeredoc(c.CmdLine[0]); h != nil {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			name := path.Base("/" + c.Files[0].Name)
			return []string{path.Join(heredocDir, name)}, heredocScript{name: name, data: data}, nil
		}
		line.CmdLine = []string{data}
		return b.shellWords(st, line), heredocScript{}, nil
	}
	var sb strings.Builder
	sb.WriteString(c.CmdLine[0])
	for _, f := range c.Files {
		sb.WriteString("\n" + f.Data + f.Name)
	}
	line.CmdLine = []string{sb.String()}
	return b.shellWords(st, line), heredocScript{}, nil
}

// runAttached starts the container with its output streamed to the build output and returns
// its exit code once it has been cleaned up (rootfs unmounted, network released).
func (b *builder) runAttached(ctx context.Context, m *container.Manager, rec *container.Record) (int, error) {
	sess, err := m.Prepare(ctx, rec)
	if err != nil {
		return 0, err
	}
	att, err := m.Attach(rec.ID, monitor.Hello{Stdout: true, Stderr: true, Cleanup: true})
	if err != nil {
		sess.Abort()
		return 0, err
	}
	defer att.Close()
	if err := sess.Start(); err != nil {
		sess.Abort()
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			m.Kill(rec, 9)
		case <-done:
		}
	}()
	exit, err := att.Stream(b.out, b.out)
	close(done)
	if cerr := m.Cleanup(context.Background(), rec, ""); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return exit.ExitCode, nil
}

func dropEnv(env []string, k string) []string {
	out := env[:0]
	for _, kv := range env {
		if kk, _, _ := strings.Cut(kv, "="); kk != k {
			out = append(out, kv)
		}
	}
	return out
}

// tmpDir makes a scratch directory under <root>/build/tmp; the caller removes it.
func (b *builder) tmpDir(prefix string) (string, error) {
	tmp := filepath.Join(b.d.Root, "build", "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(tmp, prefix)
}
