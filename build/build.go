// Package build executes Dockerfiles with docker's classic-builder semantics: every step
// commits an image (metadata steps with an empty_layer history entry), RUN steps execute in
// an intermediate container on the engine whose upper dir becomes the step's layer, and
// COPY/ADD/WORKDIR steps write their files in-root into an overlay of the parent image.
// Parsing is buildkit's (frontend/dockerfile/parser and instructions), and ARG/ENV expansion
// its shell.Lex. Steps are cached (see cache.go). The package never imports cobra.
package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/image/archive"
	"github.com/berth-dev/berth/snapshot"
)

// Deps are the engine's stores the builder works on.
type Deps struct {
	Root       string // the data root (the cache and scratch space live under <root>/build)
	Images     *image.Store
	Snapshots  *snapshot.Store
	Containers *container.Manager
	// ResolveImage finds (or pulls) a base image; nil: the local store only.
	ResolveImage func(ctx context.Context, ref string) (*image.Image, error)
}

// Options are `berth build`'s flags.
type Options struct {
	ContextDir string    // the context directory, or
	ContextTar io.Reader // a tar stream of the context (when ContextDir is "")
	Dockerfile string    // path of the Dockerfile; relative to the context; "" = Dockerfile
	// DockerfileContent, when set, is the Dockerfile (read from stdin, for instance).
	DockerfileContent []byte
	Tags              []string
	BuildArgs         map[string]string
	Target            string
	NoCache           bool
	Labels            map[string]string
	Network           string // the RUN containers' network: "" (default bridge), none, host, NAME
	Quiet             bool
	Out               io.Writer // progress and RUN output; nil discards
}

// predefinedArgs are usable without an ARG and left out of history (docker's).
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

type builder struct {
	d       Deps
	o       Options
	out     io.Writer
	ctx     *Context
	cache   *Cache
	lex     *shell.Lex
	stages  []instructions.Stage
	results []*stageState     // by stage index, each written once by its stage's goroutine
	meta    map[string]string // meta ARGs (before the first FROM) with values
	usedMu  *sync.Mutex       // guards used: stages build concurrently
	used    map[string]bool   // build args consumed
	step    int               // the last step number printed by this (per-stage) builder
	total   int
}

// stageState is a stage being built.
type stageState struct {
	img     *image.Image // nil: scratch with no step yet
	cfg     *v1.ConfigFile
	config  v1.Config
	author  string
	args    map[string]string // ARGs declared in the stage, with values
	argSet  []string          // their names in declaration order
	cmdSet  bool              // CMD given in this stage
	onbuild bool              // running the base image's triggers
}

// Build runs the Dockerfile and returns the ID of the target stage's image.
func Build(ctx context.Context, d Deps, o Options) (string, error) {
	b := &builder{d: d, o: o, out: o.Out, meta: map[string]string{}, usedMu: &sync.Mutex{}, used: map[string]bool{}}
	if b.out == nil || o.Quiet {
		b.out = io.Discard
	}
	var err error
	switch {
	case o.ContextDir != "":
		b.ctx, err = OpenDir(o.ContextDir)
	case o.ContextTar != nil:
		b.ctx, err = OpenTar(ctx, o.ContextTar, filepath.Join(d.Root, "build", "tmp"))
	default:
		dir, derr := os.MkdirTemp(filepath.Join(d.Root, "build", "tmp"), "empty-")
		if derr != nil {
			if err := os.MkdirAll(filepath.Join(d.Root, "build", "tmp"), 0o700); err != nil {
				return "", err
			}
			dir, derr = os.MkdirTemp(filepath.Join(d.Root, "build", "tmp"), "empty-")
			if derr != nil {
				return "", derr
			}
		}
		b.ctx = &Context{Dir: dir, cleanup: func() { os.RemoveAll(dir) }}
	}
	if err != nil {
		return "", err
	}
	defer b.ctx.Close()
	if b.cache, err = OpenCache(filepath.Join(d.Root, "build", "cache")); err != nil {
		return "", err
	}
	df := o.DockerfileContent
	if df == nil {
		p := o.Dockerfile
		if p == "" {
			p = "Dockerfile"
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.ctx.Dir, p)
		}
		if df, err = os.ReadFile(p); err != nil {
			if os.IsNotExist(err) {
				return "", dfErr("cannot locate specified Dockerfile: %s", filepath.Base(p))
			}
			return "", dfErr("%v", err)
		}
	}
	if err := b.parse(df); err != nil {
		return "", err
	}
	target := len(b.stages) - 1
	if o.Target != "" {
		i, ok := instructions.HasStage(b.stages, o.Target)
		if !ok {
			return "", fmt.Errorf("%w: failed to reach build target %s in Dockerfile", ErrNoStage, o.Target)
		}
		target = i
	}
	needed := map[int]bool{}
	if err := b.need(target, needed); err != nil {
		return "", err
	}
	var order []int
	for i := range b.stages {
		if needed[i] {
			order = append(order, i)
			b.total += 1 + len(b.stages[i].Commands)
		}
	}
	if len(o.Labels) > 0 {
		b.total++ // docker's classic builder adds --label as a last LABEL step
	}
	b.results = make([]*stageState, len(b.stages))
	if err := b.buildStages(ctx, order); err != nil {
		return "", err
	}
	b.step = b.total - 1
	st := b.results[target]
	if len(o.Labels) > 0 {
		keys := make([]string, 0, len(o.Labels))
		for k := range o.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if st.config.Labels == nil {
			st.config.Labels = map[string]string{}
		}
		var kv []string
		for _, k := range keys {
			st.config.Labels[k] = o.Labels[k]
			kv = append(kv, k+"="+strconv.Quote(o.Labels[k]))
		}
		b.printStep("LABEL " + strings.Join(kv, " "))
		if err := b.commitMeta(ctx, st, "LABEL "+strings.Join(kv, " ")); err != nil {
			return "", err
		}
	}
	if st.img == nil {
		return "", errors.New("the target stage produced no image (FROM scratch with no instruction)")
	}
	var unused []string
	for k := range o.BuildArgs {
		if !b.used[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(b.out, "[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
	id := st.img.ID()
	fmt.Fprintf(b.out, "Successfully built %s\n", st.img.ShortID())
	for _, t := range o.Tags {
		ref, err := image.ParseReference(t)
		if err != nil {
			return id, err
		}
		if err := d.Images.Tag(ctx, ref, st.img.Manifest); err != nil {
			return id, err
		}
		fmt.Fprintf(b.out, "Successfully tagged %s\n", ref.Familiar())
	}
	return id, nil
}

// parse reads the Dockerfile into stages and the meta ARGs.
func (b *builder) parse(df []byte) error {
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return dfErr("%s", locErr(err))
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return dfErr("%s", locErr(err))
	}
	if len(stages) == 0 {
		return dfErr("no build stage in current context (a Dockerfile needs a FROM)")
	}
	b.stages = stages
	b.lex = shell.NewLex(res.EscapeToken)
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := b.o.BuildArgs[kv.Key]; ok {
				b.meta[kv.Key] = v
				b.used[kv.Key] = true
				continue
			}
			if kv.Value != nil {
				v, _, err := b.lex.ProcessWord(*kv.Value, envMap(b.meta))
				if err != nil {
					return dfErr("%v", err)
				}
				b.meta[kv.Key] = v
			}
		}
	}
	return nil
}

// locErr puts the line number first when the parser gave one and it is not in the text.
func locErr(err error) string {
	msg := err.Error()
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 && !strings.Contains(msg, "line ") {
		return fmt.Sprintf("dockerfile parse error on line %d: %s", le.Locations[0][0].Start.Line, msg)
	}
	return msg
}

// stageRef finds a stage by name or index, only among stages before `before`.
func (b *builder) stageRef(name string, before int) (int, bool) {
	if i, ok := instructions.HasStage(b.stages[:before], name); ok {
		return i, true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

// need marks stage i and the stages it depends on.
func (b *builder) need(i int, needed map[int]bool) error {
	if needed[i] {
		return nil
	}
	needed[i] = true
	s := b.stages[i]
	base, err := b.expandMeta(s.BaseName)
	if err != nil {
		return err
	}
	if j, ok := b.stageRef(base, i); ok {
		if err := b.need(j, needed); err != nil {
			return err
		}
	}
	for _, c := range s.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			from, err := b.expandMeta(cp.From)
			if err != nil {
				return err
			}
			if j, ok := b.stageRef(from, i); ok {
				if err := b.need(j, needed); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *builder) expandMeta(s string) (string, error) {
	v, _, err := b.lex.ProcessWord(s, envMap(b.meta))
	return v, err
}

// envMap is a shell.EnvGetter over a map.
type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// env is what instructions of the stage expand against: its ARGs, overridden by its ENV.
func (st *stageState) env() envMap {
	m := envMap{}
	for k, v := range st.args {
		m[k] = v
	}
	for _, kv := range st.config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func (b *builder) printStep(code string) {
	b.step++
	fmt.Fprintf(b.out, "Step %d/%d : %s\n", b.step, b.total, code)
}

// buildStages builds the needed stages, each as soon as the stages it uses (FROM, COPY
// --from) are built, several at once when they are independent. The output reads as if they
// had run one after another: the earliest unfinished stage streams, later ones are held back
// and shown when their turn comes, and step numbers are fixed per stage in advance.
func (b *builder) buildStages(ctx context.Context, order []int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &orderedOut{w: b.out, bufs: make([]bytes.Buffer, len(order)), done: make([]bool, len(order))}
	done := make([]chan struct{}, len(b.stages))
	for _, i := range order {
		done[i] = make(chan struct{})
	}
	errs := make([]error, len(order))
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	var wg sync.WaitGroup
	step := 0
	for k, i := range order {
		sb := *b
		sb.out = out.writer(k)
		sb.step = step
		step += 1 + len(b.stages[i].Commands)
		deps := b.deps(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer out.finish(k)
			defer close(done[i])
			for _, j := range deps {
				select {
				case <-done[j]:
				case <-ctx.Done():
					errs[k] = ctx.Err()
					return
				}
				if b.results[j] == nil {
					errs[k] = context.Canceled // the stage it needs failed
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[k] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if errs[k] = sb.buildStage(ctx, i); errs[k] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// The error of the stage that failed, not the cancellation it caused in the others.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deps lists the earlier stages stage i uses (its FROM and COPY --from).
func (b *builder) deps(i int) []int {
	var out []int
	s := b.stages[i]
	if base, err := b.expandMeta(s.BaseName); err == nil {
		if j, ok := b.stageRef(base, i); ok {
			out = append(out, j)
		}
	}
	for _, c := range s.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			if from, err := b.expandMeta(cp.From); err == nil {
				if j, ok := b.stageRef(from, i); ok {
					out = append(out, j)
				}
			}
		}
	}
	return out
}

// orderedOut serialises the output of stages built concurrently (see buildStages).
type orderedOut struct {
	mu   sync.Mutex
	w    io.Writer
	cur  int // the stage (position in the order) whose output goes straight through
	bufs []bytes.Buffer
	done []bool
}

type stageWriter struct {
	o *orderedOut
	k int
}

func (o *orderedOut) writer(k int) io.Writer { return stageWriter{o, k} }

func (w stageWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	if w.k == w.o.cur {
		return w.o.w.Write(p)
	}
	return w.o.bufs[w.k].Write(p)
}

// finish marks stage k done and lets the next stages' held output through.
func (o *orderedOut) finish(k int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done[k] = true
	for o.cur < len(o.done) && o.done[o.cur] {
		o.cur++
		if o.cur < len(o.bufs) {
			o.w.Write(o.bufs[o.cur].Bytes())
			o.bufs[o.cur].Reset()
		}
	}
}

// buildStage runs stage i.
func (b *builder) buildStage(ctx context.Context, i int) error {
	s := b.stages[i]
	b.printStep(s.SourceCode)
	st := &stageState{args: map[string]string{}}
	base, err := b.expandMeta(s.BaseName)
	if err != nil {
		return err
	}
	switch j, isStage := b.stageRef(base, i); {
	case isStage:
		prev := b.results[j]
		st.img, st.cfg, st.author = prev.img, prev.cfg, prev.author
	case strings.EqualFold(base, "scratch"):
	default:
		img, err := b.resolveImage(ctx, base)
		if err != nil {
			return err
		}
		st.img = img
		if st.cfg, err = b.d.Images.Config(img); err != nil {
			return err
		}
		st.author = st.cfg.Author
	}
	if st.cfg != nil {
		st.config = *st.cfg.Config.DeepCopy()
	}
	if st.img != nil {
		fmt.Fprintf(b.out, " ---> %s\n", st.img.ShortID())
	}
	if triggers := st.config.OnBuild; len(triggers) > 0 {
		st.config.OnBuild = nil
		fmt.Fprintf(b.out, "# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			fmt.Fprint(b.out, "s")
		}
		fmt.Fprintln(b.out)
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil || len(res.AST.Children) != 1 {
				return dfErr("bad ONBUILD trigger %q", t)
			}
			c, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return dfErr("ONBUILD trigger %q: %v", t, err)
			}
			st.onbuild = true
			err = b.dispatch(ctx, i, st, c)
			st.onbuild = false
			if err != nil {
				return err
			}
		}
	}
	for _, c := range s.Commands {
		b.printStep(fmt.Sprint(c))
		if err := b.dispatch(ctx, i, st, c); err != nil {
			return err
		}
	}
	b.results[i] = st
	return nil
}

func (b *builder) resolveImage(ctx context.Context, ref string) (*image.Image, error) {
	if b.d.ResolveImage != nil {
		return b.d.ResolveImage(ctx, ref)
	}
	img, err := b.d.Images.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("pull access denied for %s: the image is not in the store (%w)", ref, err)
	}
	return img, nil
}

// dispatch executes one instruction of stage i.
func (b *builder) dispatch(ctx context.Context, i int, st *stageState, c instructions.Command) error {
	env := st.env()
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if _, isRun := c.(*instructions.RunCommand); !isRun {
			err := e.Expand(func(word string) (string, error) {
				v, _, err := b.lex.ProcessWord(word, env)
				return v, err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
			}
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc contents written <<EOF (not <<"EOF") are expanded with the stage's
		// variables, quotes left alone (BuildKit's rule).
		lex := shell.NewLex('\\')
		lex.SkipProcessQuotes = true
		err := e.ExpandRaw(func(word string) (string, error) {
			v, _, err := lex.ProcessWord(word, env)
			return v, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
		}
	}
	cfg := &st.config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		var kv []string
		for _, p := range c.Env {
			cfg.Env = setEnv(cfg.Env, p.Key, p.Value)
			kv = append(kv, p.Key+"="+p.Value)
		}
		return b.commitMeta(ctx, st, "ENV "+strings.Join(kv, " "))
	case *instructions.ArgCommand:
		var names []string
		for _, a := range c.Args {
			names = append(names, a.Key)
			v, given := b.o.BuildArgs[a.Key]
			switch {
			case given:
				b.usedMu.Lock()
				b.used[a.Key] = true
				b.usedMu.Unlock()
			case a.Value != nil:
				v = *a.Value
			default:
				mv, ok := b.meta[a.Key]
				if !ok {
					delete(st.args, a.Key)
					continue
				}
				v = mv
			}
			if _, ok := st.args[a.Key]; !ok {
				st.argSet = append(st.argSet, a.Key)
			}
			st.args[a.Key] = v
		}
		return b.commitMeta(ctx, st, "ARG "+strings.Join(names, " "))
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var kv []string
		for _, p := range c.Labels {
			cfg.Labels[p.Key] = p.Value
			kv = append(kv, p.Key+"="+p.Value)
		}
		return b.commitMeta(ctx, st, "LABEL "+strings.Join(kv, " "))
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
		return b.commitMeta(ctx, st, "MAINTAINER "+c.Maintainer)
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		var ports []string
		for _, p := range c.Ports {
			v, _, err := b.lex.ProcessWord(p, env)
			if err != nil {
				return err
			}
			for _, f := range strings.Fields(v) {
				ps, err := exposePorts(f)
				if err != nil {
					return err
				}
				for _, p := range ps {
					cfg.ExposedPorts[p] = struct{}{}
					ports = append(ports, p)
				}
			}
		}
		return b.commitMeta(ctx, st, "EXPOSE "+strings.Join(ports, " "))
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
		return b.commitMeta(ctx, st, "VOLUME "+fmt.Sprint(c.Volumes))
	case *instructions.UserCommand:
		cfg.User = c.User
		return b.commitMeta(ctx, st, "USER "+c.User)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		return b.commitMeta(ctx, st, "STOPSIGNAL "+c.Signal)
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
		return b.commitMeta(ctx, st, "SHELL "+jsonArray(c.Shell))
	case *instructions.CmdCommand:
		cfg.Cmd = b.shellWords(st, c.ShellDependantCmdLine)
		st.cmdSet = true
		return b.commitMeta(ctx, st, "CMD "+jsonArray(cfg.Cmd))
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = b.shellWords(st, c.ShellDependantCmdLine)
		if len(cfg.Entrypoint) == 0 {
			cfg.Entrypoint = nil
		}
		if !st.cmdSet {
			cfg.Cmd = nil // docker: an ENTRYPOINT resets the CMD inherited from the base
		}
		return b.commitMeta(ctx, st, "ENTRYPOINT "+jsonArray(cfg.Entrypoint))
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
		return b.commitMeta(ctx, st, "HEALTHCHECK "+jsonArray(h.Test))
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return b.commitMeta(ctx, st, "ONBUILD "+c.Expression)
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, st, c.Path)
	case *instructions.RunCommand:
		return b.run(ctx, st, c)
	case *instructions.CopyCommand:
		if c.Parents || len(c.ExcludePatterns) > 0 {
			return fmt.Errorf("%w: COPY --parents and --exclude", ErrUnsupported)
		}
		// --link only lets BuildKit rebase the layer without the layers below; the files
		// it produces are the same, so it is accepted and copied as usual.
		return b.copy(ctx, i, st, c.SourcesAndDest, c.From, c.Chown, c.Chmod, false, "")
	case *instructions.AddCommand:
		if len(c.ExcludePatterns) > 0 || c.KeepGitDir != nil || (c.Unpack != nil && !*c.Unpack) {
			return fmt.Errorf("%w: ADD --exclude, --keep-git-dir and --unpack=false", ErrUnsupported)
		}
		return b.copy(ctx, i, st, c.SourcesAndDest, "", c.Chown, c.Chmod, true, c.Checksum)
	}
	return fmt.Errorf("%w: instruction %s", ErrUnsupported, strings.ToUpper(c.Name()))
}

// shellWords is a CMD/ENTRYPOINT/RUN command line: the shell form runs under the stage's
// SHELL (default /bin/sh -c).
func (b *builder) shellWords(st *stageState, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := st.config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if kk, _, _ := strings.Cut(kv, "="); kk == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func jsonArray(a []string) string {
	var parts []string
	for _, s := range a {
		parts = append(parts, strconv.Quote(s))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// exposePorts normalizes "80", "80/udp", "8000-8002/tcp".
func exposePorts(s string) ([]string, error) {
	port, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", port)
	}
	z := a
	if isRange {
		if z, err = strconv.ParseUint(hi, 10, 16); err != nil || z < a {
			return nil, fmt.Errorf("invalid containerPort: %s", port)
		}
	}
	var out []string
	for p := a; p <= z; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

func parentID(st *stageState) string {
	if st.img == nil {
		return "scratch"
	}
	return st.img.ID()
}

// fromCache returns the cached image of key, nil on a miss.
func (b *builder) fromCache(key string) *image.Image {
	if b.o.NoCache {
		return nil
	}
	id := b.cache.Get(key)
	if id == "" {
		return nil
	}
	img, err := b.d.Images.Resolve(id)
	if err != nil || img.ID() != id {
		return nil
	}
	return img
}

// advance makes img the stage's current image.
func (b *builder) advance(st *stageState, img *image.Image, cached bool) error {
	cfg, err := b.d.Images.Config(img)
	if err != nil {
		return err
	}
	st.img, st.cfg = img, cfg
	st.config = *cfg.Config.DeepCopy()
	if cached {
		fmt.Fprintln(b.out, " ---> Using cache")
	}
	fmt.Fprintf(b.out, " ---> %s\n", img.ShortID())
	return nil
}

// commitMeta records a metadata-only step (empty_layer history).
func (b *builder) commitMeta(ctx context.Context, st *stageState, text string) error {
	createdBy := "/bin/sh -c #(nop)  " + text
	cfgJSON := fmt.Sprintf("%#v", st.config)
	key := cacheKey(parentID(st), "meta", createdBy, cfgJSON, st.author)
	if img := b.fromCache(key); img != nil {
		return b.advance(st, img, true)
	}
	img, err := archive.Commit(ctx, b.d.Images, b.d.Snapshots, st.img, st.cfg, nil, archive.CommitOptions{
		Config: st.config, CreatedBy: createdBy, Author: st.author, EmptyLayer: true,
	})
	if err != nil {
		return err
	}
	if err := b.cache.Put(key, img.ID()); err != nil {
		return err
	}
	return b.advance(st, img, false)
}

// runArgs are the build args a RUN sees, as "K=V" sorted by name (docker's "|N K=V" prefix).
func (st *stageState) runArgs(buildArgs map[string]string) []string {
	var out []string
	for _, k := range st.argSet {
		if v, ok := st.args[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range buildArgs {
		if predefinedArgs[k] {
			if _, declared := st.args[k]; !declared {
				out = append(out, k+"="+v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func randomKey(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// workdirPath resolves WORKDIR p against the current working dir.
func workdirPath(cur, p string) string {
	if !path.IsAbs(p) {
		if cur == "" {
			cur = "/"
		}
		p = path.Join(cur, p)
	}
	return path.Clean(p)
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

// dockerfileError is a Dockerfile problem; it matches ErrDockerfile.
type dockerfileError struct{ msg string }

func (e *dockerfileError) Error() string { return e.msg }
func (e *dockerfileError) Unwrap() error { return ErrDockerfile }

func dfErr(format string, a ...any) error { return &dockerfileError{fmt.Sprintf(format, a...)} }
