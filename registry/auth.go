package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	credhelper "github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Credentials live where docker keeps them, so `docker login` and `berth
// login` share them and ggcr's authn.DefaultKeychain reads them:
//
//	$DOCKER_CONFIG/config.json, else ~/.docker/config.json (mode 0600)
//	{
//	  "auths": {
//	    "https://index.docker.io/v1/": {"auth": base64("user:password")},
//	    "registry.example:5000":       {"auth": "..."}
//	  },
//	  "credsStore": "pass",                      // optional: helper for every registry
//	  "credHelpers": {"gcr.io": "gcloud"},       // optional: helper per registry
//	  ...                                        // other keys, kept as they are
//	}
//
// With a helper configured for the server, the secret goes to
// docker-credential-<helper> (store/erase) and "auths" gets an empty entry,
// as docker does. The file is replaced atomically (temp file, fsync, rename,
// directory fsync), so a crash never leaves it truncated.

// dockerHubKey is the key docker uses for Docker Hub in "auths".
const dockerHubKey = "https://index.docker.io/v1/"

// serverKey returns the canonical "auths" key for a server as the user typed
// it ("docker.io", "https://host:5000/v2/", "host:5000") and the registry
// host to talk to.
func serverKey(server string) (key, host string) {
	s := strings.TrimSpace(server)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHubKey, name.DefaultRegistry
	}
	return s, s
}

// Login checks user and password against server (a ping, then a token
// exchange for bearer registries or an authenticated GET /v2/ for basic
// ones) and, if they work, stores them in the Docker config.
func Login(ctx context.Context, server, user, password string, o Options) error {
	key, host := serverKey(server)
	if err := checkLogin(ctx, host, user, password, o); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	if err := storeCredentials(key, user, password); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	return nil
}

func checkLogin(ctx context.Context, host, user, password string, o Options) error {
	reg, err := name.NewRegistry(host, nameOptions(host, o)...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %v", host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	// No scope: the token server then only checks the credentials, which
	// is what docker login asks of it too.
	rt, err := transport.NewWithContext(ctx, reg, auth, baseTransport(), nil)
	if err != nil {
		return classify(err, host, host, false)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: transport.NewUserAgent(rt, userAgent)}).Do(req)
	if err != nil {
		return classify(err, host, host, false)
	}
	defer resp.Body.Close()
	return classify(transport.CheckError(resp, http.StatusOK), host, host, false)
}

// Logout removes the stored credentials for server; ErrNotLoggedIn if there
// were none.
func Logout(server string) error {
	key, host := serverKey(server)
	path, err := configPath()
	if err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	cfg, err := readConfig(path)
	if err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	found := false
	if helper := cfg.helper(key); helper != "" {
		if err := credhelper.Erase(helperProgram(helper), key); err == nil {
			found = true
		} else if !credentials.IsErrCredentialsNotFoundMessage(err.Error()) {
			return fmt.Errorf("logout %s: credential helper %s: %w", host, helper, err)
		}
	}
	// Docker also accepts the key with a scheme; drop every spelling.
	for k := range cfg.auths {
		if k2, _ := serverKey(k); k2 == key {
			delete(cfg.auths, k)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("logout %s: %w", host, ErrNotLoggedIn)
	}
	if err := writeConfig(path, cfg); err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	return nil
}

func storeCredentials(key, user, password string) error {
	path, err := configPath()
	if err != nil {
		return err
	}
	cfg, err := readConfig(path)
	if err != nil {
		return err
	}
	entry := map[string]string{}
	if helper := cfg.helper(key); helper != "" {
		creds := &credentials.Credentials{ServerURL: key, Username: user, Secret: password}
		if err := credhelper.Store(helperProgram(helper), creds); err != nil {
			return fmt.Errorf("credential helper %s: %w", helper, err)
		}
	} else {
		entry["auth"] = base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	cfg.auths[key] = raw
	return writeConfig(path, cfg)
}

func helperProgram(helper string) credhelper.ProgramFunc {
	return credhelper.NewShellProgramFunc("docker-credential-" + helper)
}

// configPath is where docker reads its config: $DOCKER_CONFIG/config.json or
// ~/.docker/config.json.
func configPath() (string, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("docker config: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, "config.json"), nil
}

// dockerConfig is config.json with unknown keys preserved as raw JSON.
type dockerConfig struct {
	other map[string]json.RawMessage
	auths map[string]json.RawMessage
}

func (c *dockerConfig) helper(key string) string {
	var helpers map[string]string
	if raw, ok := c.other["credHelpers"]; ok && json.Unmarshal(raw, &helpers) == nil {
		_, host := serverKey(key)
		for _, k := range []string{key, host} {
			if h := helpers[k]; h != "" {
				return h
			}
		}
	}
	var store string
	if raw, ok := c.other["credsStore"]; ok {
		_ = json.Unmarshal(raw, &store)
	}
	return store
}

func readConfig(path string) (*dockerConfig, error) {
	cfg := &dockerConfig{other: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(b, &cfg.other); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	if raw, ok := cfg.other["auths"]; ok {
		if err := json.Unmarshal(raw, &cfg.auths); err != nil {
			return nil, fmt.Errorf("docker config %s: auths: %w", path, err)
		}
		if cfg.auths == nil {
			cfg.auths = map[string]json.RawMessage{}
		}
	}
	return cfg, nil
}

// writeConfig replaces path atomically. A symlinked config.json (dotfile
// managers) is written through: the link's target is replaced.
func writeConfig(path string, cfg *dockerConfig) error {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	auths, err := json.Marshal(cfg.auths)
	if err != nil {
		return err
	}
	cfg.other["auths"] = auths
	b, err := json.MarshalIndent(cfg.other, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config.json-*")
	if err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	return nil
}
