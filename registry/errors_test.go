package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
)

// fault, when it returns true, has answered the request itself.
type fault func(w http.ResponseWriter, r *http.Request) bool

// TestPullErrors injects registry failures: each gives one clear error
// wrapping the right sentinel, and leaves the stores without any record or
// reference, consistent, with no temp files (checked by stores' cleanup).
func TestPullErrors(t *testing.T) {
	isolateDockerConfig(t)
	var current atomic.Pointer[fault]
	host := inProcessRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f := current.Load(); f != nil && (*f)(w, r) {
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	src := testImage(t, false)
	pushGGCR(t, host+"/err/img:1", src)
	layers, err := src.Layers()
	if err != nil {
		t.Fatal(err)
	}
	blob := func(i int) (string, []byte) {
		h, _ := layers[i].Digest()
		rc, err := layers[i].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return h.String(), b
	}
	isBlob := func(r *http.Request, d string) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d)
	}
	serve := func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	}

	cases := []struct {
		name  string
		ref   string
		fault fault
		want  []error // any of these
		text  string
	}{{
		name: "401",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return true
		},
		want: []error{ErrUnauthorized},
		text: "authentication required: run 'berth login " + host + "'",
	}, {
		name: "404",
		ref:  host + "/err/img:nope",
		want: []error{ErrNotFound},
		text: "manifest unknown: " + host + "/err/img:nope",
	}, {
		name: "500",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			if d, _ := blob(2); isBlob(r, d) {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			}
			return false
		},
		want: []error{ErrServer},
		text: host,
	}, {
		name: "dropped connection",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			d, b := blob(1)
			if !isBlob(r, d) {
				return false
			}
			// Announce the whole blob, send half, hang up.
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(b))
			bw.Write(b[:len(b)/2])
			bw.Flush()
			conn.Close()
			return true
		},
		want: []error{ErrConnection},
		text: host,
	}, {
		name: "blob with other bytes",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			d, b := blob(0)
			if !isBlob(r, d) {
				return false
			}
			// Same length, valid gzip, same tar inside: only the gzip
			// header's mtime differs, so only the digest can tell.
			b = bytes.Clone(b)
			b[4] ^= 0xff
			serve(w, b)
			return true
		},
		want: []error{image.ErrDigestMismatch, snapshot.ErrDigestMismatch},
		text: "digest mismatch",
	}, {
		name: "corrupt blob",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			d, b := blob(1)
			if !isBlob(r, d) {
				return false
			}
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0xff
			serve(w, b)
			return true
		},
		want: []error{image.ErrDigestMismatch, snapshot.ErrDigestMismatch, snapshot.ErrInvalidLayer},
	}, {
		name: "truncated blob",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			d, b := blob(2)
			if !isBlob(r, d) {
				return false
			}
			serve(w, b[:len(b)-10])
			return true
		},
		want: []error{image.ErrSizeMismatch},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			images, snaps, _ := stores(t)
			if c.fault != nil {
				current.Store(&c.fault)
				defer current.Store(nil)
			}
			ref := c.ref
			if ref == "" {
				ref = host + "/err/img:1"
			}
			_, err := Pull(context.Background(), images, snaps, mustRef(t, ref), Options{Keychain: anonymous})
			if err == nil {
				t.Fatal("pull succeeded")
			}
			t.Log(err)
			ok := false
			for _, w := range c.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Errorf("error %v is none of %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not mention %q", err, c.text)
			}
			assertNoImages(t, images)

			// The registry healed: the same stores finish the pull.
			current.Store(nil)
			if c.ref == "" {
				if _, err := Pull(context.Background(), images, snaps, mustRef(t, ref), Options{Keychain: anonymous}); err != nil {
					t.Fatalf("pull after the fault: %v", err)
				}
			}
		})
	}
}

// TestPullUnreachable: nothing listens on the port.
func TestPullUnreachable(t *testing.T) {
	isolateDockerConfig(t)
	images, snaps, _ := stores(t)
	_, err := Pull(context.Background(), images, snaps, mustRef(t, "127.0.0.1:1/x/y:1"), Options{Keychain: anonymous})
	if !errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v, want ErrConnection naming the registry", err)
	}
	assertNoImages(t, images)
}

// TestPushErrors: a registry refusing credentials, and an image the store
// does not have.
func TestPushErrors(t *testing.T) {
	isolateDockerConfig(t)
	host := inProcessRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/v2/" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	images, snaps, _ := stores(t)
	open := inProcessRegistry(t, nil)
	pushGGCR(t, open+"/a/b:1", testImage(t, false))
	img, err := Pull(context.Background(), images, snaps, mustRef(t, open+"/a/b:1"), Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	dst := mustRef(t, host+"/a/b:1")
	if err := images.Tag(context.Background(), dst, img.Manifest); err != nil {
		t.Fatal(err)
	}
	if err := Push(context.Background(), images, dst, Options{Keychain: anonymous}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("got %v, want ErrUnauthorized", err)
	}
	if err := Push(context.Background(), images, mustRef(t, open+"/not/there:1"), Options{Keychain: anonymous}); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("got %v, want image.ErrNotFound", err)
	}
}
