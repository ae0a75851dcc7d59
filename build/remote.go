package build

// ADD of a URL: the file is downloaded on every build (as docker's classic builder does) into
// the build's scratch space, and its content joins the COPY hash, so the cache holds as long
// as the server sends the same bytes. Docker's rules: the file is named after the URL path's
// last element when the destination is a directory, it is never unpacked, its mode is 0600
// (unless --chmod), its mtime is the server's Last-Modified; --checksum=sha256:HEX must match.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// remoteFile is a downloaded ADD source.
type remoteFile struct {
	Name    string // the URL path's last element
	File    string // the downloaded copy
	ModTime time.Time
}

// isURL says whether an ADD source is remote; isGit whether it names a git repository.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || isGit(s)
}

func isGit(s string) bool {
	return strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://") ||
		(strings.HasPrefix(s, "http") && strings.HasSuffix(strings.SplitN(s, "#", 2)[0], ".git"))
}

// fetch downloads src into dir and checks it against checksum ("" or "sha256:HEX").
func fetch(ctx context.Context, src, dir, checksum string) (remoteFile, error) {
	if isGit(src) {
		return remoteFile{}, fmt.Errorf("%w: ADD from a git repository (%s)", ErrUnsupported, src)
	}
	u, err := url.Parse(src)
	if err != nil {
		return remoteFile{}, srcErr("ADD %s: not a valid URL: %v", src, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return remoteFile{}, srcErr("ADD %s: cannot determine a file name from the URL: give the destination file name", src)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return remoteFile{}, srcErr("ADD %s: %v", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return remoteFile{}, srcErr("ADD %s: the URL is not reachable: %v", src, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return remoteFile{}, srcErr("ADD %s: the server answered %s", src, resp.Status)
	}
	f, err := os.CreateTemp(dir, "url-")
	if err != nil {
		return remoteFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		os.Remove(f.Name())
		return remoteFile{}, srcErr("ADD %s: download failed: %v", src, err)
	}
	if checksum != "" {
		algo, want, _ := strings.Cut(checksum, ":")
		if algo != "sha256" || len(want) != 64 {
			os.Remove(f.Name())
			return remoteFile{}, srcErr("ADD --checksum=%s: use sha256:<64 hex digits>", checksum)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(want) {
			os.Remove(f.Name())
			return remoteFile{}, srcErr("ADD %s: checksum mismatch: the content is sha256:%s, --checksum wants %s", src, got, checksum)
		}
	}
	rf := remoteFile{Name: name, File: f.Name(), ModTime: time.Now()}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			rf.ModTime = t
		}
	}
	return rf, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
