package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
)

// Options configure Pull, Push and Login.
type Options struct {
	// Platform selects the manifest of an index; zero means image.HostPlatform().
	Platform v1.Platform
	// Insecure lists registries ("host" or "host:port") allowed over plain
	// HTTP; localhost, 127.0.0.1 and [::1] always are.
	Insecure []string
	// Keychain resolves credentials; nil means authn.DefaultKeychain
	// (~/.docker/config.json or $DOCKER_CONFIG, credential helpers honoured).
	Keychain authn.Keychain
	// Progress receives Docker's JSON progress messages, one per line; nil
	// is silent.
	Progress io.Writer
	// Parallel is the number of concurrent layer transfers (default 3, as
	// docker's max-concurrent-downloads).
	Parallel int
}

const defaultParallel = 3

func (o Options) withDefaults() Options {
	if o.Platform.OS == "" && o.Platform.Architecture == "" {
		o.Platform = image.HostPlatform()
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Parallel <= 0 {
		o.Parallel = defaultParallel
	}
	return o
}

// retryBackoff is how transient failures (connection errors before a
// response, 408/429/5xx answers) are retried: as ggcr and docker do, a few
// times with growing pauses. A variable so tests of error paths stay fast.
var retryBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}

var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

const userAgent = "berth"

// nameOptions makes go-containerregistry use plain HTTP for a registry the
// user marked insecure (its own heuristics already cover loopback names).
func nameOptions(host string, o Options) []name.Option {
	hostname := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		hostname = host[:i]
	}
	for _, h := range o.Insecure {
		if h == host || h == hostname {
			return []name.Option{name.Insecure}
		}
	}
	return nil
}

// baseTransport is the HTTP transport under the auth layer: ggcr's tuned
// default with retries of transient failures.
func baseTransport() http.RoundTripper {
	return transport.NewRetry(remote.DefaultTransport,
		transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryStatusCodes(retryStatusCodes...))
}

// client talks to one repository with one authenticated transport, so a
// pull performs the ping and token exchange once.
type client struct {
	repo name.Repository
	host string // registry as the user knows it, for messages ("berth login HOST")
	auth authn.Authenticator
	http *http.Client
}

// newClient resolves credentials for ref's registry and authenticates for
// scope (transport.PullScope or PushScope).
func newClient(ctx context.Context, ref image.Reference, o Options, scope string) (*client, error) {
	repo, err := name.NewRepository(ref.Repository(), nameOptions(ref.Domain(), o)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", image.ErrInvalidReference, err)
	}
	host := ref.Domain()
	auth, err := authn.Resolve(ctx, o.Keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", host, err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, baseTransport(), []string{repo.Scope(scope)})
	if err != nil {
		return nil, classify(err, host, ref.Repository(), false)
	}
	return &client{
		repo: repo,
		host: host,
		auth: auth,
		http: &http.Client{Transport: transport.NewUserAgent(rt, userAgent)},
	}, nil
}

func (c *client) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.repo.Registry.Scheme(), c.repo.RegistryStr(), c.repo.RepositoryStr(), kind, ref)
}

// manifestAccept lists every manifest type Pull understands, so a registry
// never down-converts to schema 1.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// do sends a request and turns any status but want into a classified error.
func (c *client) do(ctx context.Context, method, url, accept, object string, blob bool, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(err, c.host, object, blob)
	}
	if err := transport.CheckError(resp, want...); err != nil {
		resp.Body.Close()
		return nil, classify(err, c.host, object, blob)
	}
	return resp, nil
}

// fetchManifest GETs a manifest by tag or digest and checks its digest: a
// digest reference must match exactly, and a registry's Docker-Content-Digest
// header must agree with the bytes.
func (c *client) fetchManifest(ctx context.Context, ref, object string) ([]byte, digest.Digest, string, error) {
	resp, err := c.do(ctx, http.MethodGet, c.url("manifests", ref), manifestAccept, object, false, http.StatusOK)
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(c.body(resp.Body, object), image.MaxReadBlob+1))
	if err != nil {
		return nil, "", "", err
	}
	if len(raw) > image.MaxReadBlob {
		return nil, "", "", fmt.Errorf("manifest %s: %w: over %d bytes", object, image.ErrBlobTooLarge, image.MaxReadBlob)
	}
	got := digest.FromBytes(raw)
	if want, err := digest.Parse(ref); err == nil && want != got {
		return nil, "", "", fmt.Errorf("manifest %s: %w: content hashes to %s", object, image.ErrDigestMismatch, got)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != got.String() {
		return nil, "", "", fmt.Errorf("manifest %s: %w: registry says %s, content hashes to %s", object, image.ErrDigestMismatch, h, got)
	}
	return raw, got, resp.Header.Get("Content-Type"), nil
}

// fetchBlob opens a blob's body. The caller verifies the content (the
// stores do, while they consume it) and closes the body.
func (c *client) fetchBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := c.do(ctx, http.MethodGet, c.url("blobs", d.String()), "", d.String(), true, http.StatusOK)
	if err != nil {
		return nil, 0, err
	}
	return readCloser{c.body(resp.Body, d.String()), resp.Body}, resp.ContentLength, nil
}

// headBlob reports whether the repository has the blob.
func (c *client) headBlob(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.url("blobs", d.String()), "", d.String(), true, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// body labels read errors of a response body (a connection dropped
// mid-transfer) with the registry, leaving io.EOF alone.
func (c *client) body(r io.Reader, object string) io.Reader {
	return &bodyReader{r: r, host: c.host, object: object}
}

type bodyReader struct {
	r            io.Reader
	host, object string
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err, b.host, b.object, true)
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}
