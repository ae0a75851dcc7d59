package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestServerKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  dockerHubKey,
		"docker.io":                         dockerHubKey,
		"index.docker.io":                   dockerHubKey,
		"https://index.docker.io/v1/":       dockerHubKey,
		"registry-1.docker.io":              dockerHubKey,
		"localhost:5000":                    "localhost:5000",
		"https://Registry.example:5000/v2/": "registry.example:5000",
		"http://127.0.0.1:8080":             "127.0.0.1:8080",
	} {
		if got, _ := serverKey(in); got != want {
			t.Errorf("serverKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoginLogout: credentials are checked against a basic-auth registry,
// stored docker's way (other keys kept, 0600), used by Pull through the
// default keychain, and removed by Logout.
func TestLoginLogout(t *testing.T) {
	dir := isolateDockerConfig(t)
	const user, pass = "alice", "s3cret"
	host := inProcessRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(`{"psFormat":"table {{.ID}}","auths":{"other.example":{"auth":"eDp5"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	err := Login(ctx, host, user, "wrong", Options{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: got %v, want ErrUnauthorized", err)
	}
	if err := Login(ctx, "http://"+host+"/v2/", user, pass, Options{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", fi.Mode().Perm())
	}
	var cfg struct {
		PsFormat string                       `json:"psFormat"`
		Auths    map[string]map[string]string `json:"auths"`
	}
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.PsFormat != "table {{.ID}}" || cfg.Auths["other.example"]["auth"] != "eDp5" {
		t.Errorf("other keys lost: %s", b)
	}
	if got := cfg.Auths[host]["auth"]; got != base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) {
		t.Errorf("auths[%s] = %q", host, got)
	}

	// The stored credentials work for a real pull through DefaultKeychain.
	pushGGCR(t, host+"/priv/img:1", testImage(t, false), remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	images, snaps, _ := stores(t)
	if _, err := Pull(ctx, images, snaps, mustRef(t, host+"/priv/img:1"), Options{}); err != nil {
		t.Fatal(err)
	}

	if err := Logout(host); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(cfgPath)
	cfg.Auths = nil
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Auths[host]; ok || cfg.Auths["other.example"] == nil {
		t.Errorf("after logout: %s", b)
	}
	if err := Logout(host); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: got %v, want ErrNotLoggedIn", err)
	}
	// Without credentials the registry refuses the pull.
	images2, snaps2, _ := stores(t)
	if _, err := Pull(ctx, images2, snaps2, mustRef(t, host+"/priv/img:1"), Options{}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("pull after logout: got %v, want ErrUnauthorized", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left in the config dir: %v", ents)
	}
}
