package volume

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	must(t, err)
	return s, root
}

func TestCreateGetList(t *testing.T) {
	s, root := newStore(t)
	v, err := s.Create(ctx, "data", map[string]string{"a": "b"}, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, false)
	must(t, err)
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != filepath.Join(root, "volumes/data/_data") || v.Anonymous {
		t.Errorf("volume: %+v", v)
	}
	fi, err := os.Stat(v.Mountpoint)
	must(t, err)
	if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("_data: %v", fi.Mode())
	}
	g, err := s.Get("data")
	must(t, err)
	if !g.CreatedAt.Equal(v.CreatedAt) || g.Labels["a"] != "b" || g.Options["o"] != "size=1m" {
		t.Errorf("get: %+v", g)
	}
	// Same name again: the existing volume, unchanged.
	again, err := s.Create(ctx, "data", map[string]string{"other": "x"}, nil, false)
	must(t, err)
	if !again.CreatedAt.Equal(v.CreatedAt) || again.Labels["a"] != "b" {
		t.Errorf("re-create: %+v", again)
	}
	// Generated names.
	anon, err := s.Create(ctx, "", nil, nil, true)
	must(t, err)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) || !anon.Anonymous {
		t.Errorf("anonymous: %+v", anon)
	}
	if _, ok := anon.Labels[anonLabel]; !ok {
		t.Errorf("anonymous label missing: %v", anon.Labels)
	}
	list, err := s.List()
	must(t, err)
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
	}
	wantNames := []string{anon.Name, "data"}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("list: %v", names)
	}
	// The API type, as docker volume inspect prints it.
	b, err := json.Marshal(v.API())
	must(t, err)
	for _, want := range []string{`"Driver":"local"`, `"Name":"data"`, `"Scope":"local"`, `"Mountpoint":"` + v.Mountpoint + `"`, `"CreatedAt":"20`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("API JSON %s lacks %s", b, want)
		}
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
}

func TestNames(t *testing.T) {
	s, _ := newStore(t)
	for _, bad := range []string{"a", "-x", ".tmp", ".lock", "a/b", "../x", "a b", "x\x00"} {
		if _, err := s.Create(ctx, bad, nil, nil, false); !errors.Is(err, ErrBadName) {
			t.Errorf("create %q: %v", bad, err)
		}
		if _, err := s.Get(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("get %q: %v", bad, err)
		}
	}
	for _, good := range []string{"ab", "my_vol.1-x", "0" + strings.Repeat("f", 63)} {
		if _, err := s.Create(ctx, good, nil, nil, false); err != nil {
			t.Errorf("create %q: %v", good, err)
		}
	}
	if _, err := s.Create(ctx, "opts", nil, map[string]string{"bogus": "1"}, false); !errors.Is(err, ErrBadOption) {
		t.Errorf("bad option: %v", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s, root := newStore(t)
	const n = 32
	vols := make([]*Volume, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Separate Store values, as separate processes would have.
			s2, err := Open(root)
			if err != nil {
				errs[i] = err
				return
			}
			vols[i], errs[i] = s2.Create(ctx, "shared", map[string]string{"i": "x"}, nil, false)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if !vols[i].CreatedAt.Equal(vols[0].CreatedAt) || vols[i].Mountpoint != vols[0].Mountpoint {
			t.Errorf("create %d returned another volume", i)
		}
	}
	list, err := s.List()
	must(t, err)
	if len(list) != 1 {
		t.Errorf("%d volumes", len(list))
	}
	left, _ := os.ReadDir(filepath.Join(root, "volumes/.tmp"))
	if len(left) != 0 {
		t.Errorf("work dirs left: %v", left)
	}
}

func TestRefsAndRemove(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.Create(ctx, "v1", nil, nil, false)
	must(t, err)
	must(t, s.Ref("v1", "c1"))
	must(t, s.Ref("v1", "c2"))
	must(t, s.Ref("v1", "c1")) // idempotent
	users, err := s.Users("v1")
	must(t, err)
	if !slices.Equal(users, []string{"c1", "c2"}) {
		t.Errorf("users: %v", users)
	}
	for _, force := range []bool{false, true} {
		err := s.Remove(ctx, "v1", force)
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "c1") {
			t.Errorf("remove in use (force %v): %v", force, err)
		}
	}
	must(t, s.Unref("v1", "c1"))
	must(t, s.Unref("v1", "c1")) // idempotent
	must(t, s.Unref("v1", "c2"))
	if err := s.Ref("v1", "../x"); err == nil {
		t.Error("ref with a bad id")
	}
	must(t, s.Remove(ctx, "v1", false))
	if _, err := s.Get("v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
	if err := s.Remove(ctx, "v1", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove missing: %v", err)
	}
	must(t, s.Remove(ctx, "v1", true))
	if err := s.Ref("v1", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ref missing: %v", err)
	}
	if _, err := s.Users("v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("users missing: %v", err)
	}
}

// A Ref racing a Remove either wins (the Remove fails ErrInUse and the ref
// is there) or loses (ErrNotFound, volume gone): never both succeed.
func TestRefRemoveRace(t *testing.T) {
	s, _ := newStore(t)
	refWon, rmWon := 0, 0
	for range 200 {
		_, err := s.Create(ctx, "racy", nil, nil, false)
		must(t, err)
		var refErr, rmErr error
		var wg sync.WaitGroup
		wg.Go(func() { refErr = s.Ref("racy", "c1") })
		wg.Go(func() { rmErr = s.Remove(ctx, "racy", false) })
		wg.Wait()
		switch {
		case refErr == nil && errors.Is(rmErr, ErrInUse):
			refWon++
			users, err := s.Users("racy")
			must(t, err)
			if !slices.Equal(users, []string{"c1"}) {
				t.Fatalf("ref lost: %v", users)
			}
			must(t, s.Unref("racy", "c1"))
			must(t, s.Remove(ctx, "racy", false))
		case rmErr == nil && errors.Is(refErr, ErrNotFound):
			rmWon++
		default:
			t.Fatalf("ref: %v, remove: %v", refErr, rmErr)
		}
	}
	t.Logf("ref won %d, remove won %d", refWon, rmWon)
}

func TestPrune(t *testing.T) {
	s, _ := newStore(t)
	mk := func(name string, anon bool, labels map[string]string, content string) {
		v, err := s.Create(ctx, name, labels, nil, anon)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte(content), 0o644))
	}
	mk("anon-used", true, nil, "1")
	mk("anon-free", true, map[string]string{"env": "dev"}, "12345")
	mk("anon-keep", true, map[string]string{"keep": "yes"}, "1")
	mk("named-free", false, map[string]string{"env": "dev"}, "1234567890")
	mk("named-used", false, nil, "1")
	must(t, s.Ref("anon-used", "c1"))
	must(t, s.Ref("named-used", "c2"))

	// Default: only unused anonymous volumes; label filters narrow.
	removed, reclaimed, err := s.Prune(ctx, false, []string{"!keep"})
	must(t, err)
	if !slices.Equal(removed, []string{"anon-free"}) || reclaimed != 5 {
		t.Errorf("prune: %v %d", removed, reclaimed)
	}
	removed, _, err = s.Prune(ctx, true, []string{"env=prod"})
	must(t, err)
	if len(removed) != 0 {
		t.Errorf("prune env=prod: %v", removed)
	}
	removed, reclaimed, err = s.Prune(ctx, true, []string{"env"})
	must(t, err)
	if !slices.Equal(removed, []string{"named-free"}) || reclaimed != 10 {
		t.Errorf("prune --all env: %v %d", removed, reclaimed)
	}
	removed, _, err = s.Prune(ctx, true, nil)
	must(t, err)
	if !slices.Equal(removed, []string{"anon-keep"}) {
		t.Errorf("prune --all: %v", removed)
	}
	list, err := s.List()
	must(t, err)
	if len(list) != 2 {
		t.Errorf("left: %d volumes", len(list))
	}
}

func TestSize(t *testing.T) {
	s, _ := newStore(t)
	v, err := s.Create(ctx, "sized", nil, nil, false)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(v.Mountpoint, "a"), make([]byte, 1000), 0o644))
	must(t, os.Link(filepath.Join(v.Mountpoint, "a"), filepath.Join(v.Mountpoint, "b")))
	must(t, os.MkdirAll(filepath.Join(v.Mountpoint, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(v.Mountpoint, "d/c"), make([]byte, 24), 0o644))
	n, err := s.Size("sized")
	must(t, err)
	if n != 1024 {
		t.Errorf("size %d, want 1024", n)
	}
}

func TestOpenSweepsWorkDirs(t *testing.T) {
	s, root := newStore(t)
	tmp := filepath.Join(root, "volumes/.tmp")
	must(t, os.MkdirAll(filepath.Join(tmp, "create-dead/_data/x"), 0o755))
	// A work dir held by a live owner stays.
	live, err := s.newWorkDir("create-")
	must(t, err)
	defer live.purge()
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "create-dead")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale work dir kept: %v", err)
	}
	if _, err := os.Stat(live.path); err != nil {
		t.Errorf("live work dir removed: %v", err)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(root, "volumes"), &st))
	if st.Mode&0o777 != 0o701 {
		t.Errorf("volumes dir mode %o", st.Mode&0o777)
	}
}
