package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors. Callers test them with errors.Is; every error this package
// returns wraps one of these, a sentinel of the image or snapshot package
// (digest mismatches, unsupported media types, no matching platform pass
// through unchanged), or a context error, together with the operation and the
// object concerned. The CLI maps them to exit codes and messages.
var (
	// ErrUnauthorized: the registry answered 401 (or 403): no credentials,
	// wrong credentials, or no access to the repository.
	ErrUnauthorized = errors.New("authentication required")
	// ErrNotFound: the registry answered 404 for a manifest or repository.
	ErrNotFound = errors.New("manifest unknown")
	// ErrBlobNotFound: the registry answered 404 for a blob a manifest names.
	ErrBlobNotFound = errors.New("blob unknown")
	// ErrServer: the registry answered 5xx (after retries) or another status
	// the protocol does not allow at that point.
	ErrServer = errors.New("registry error")
	// ErrConnection: the registry could not be reached, or the connection
	// dropped (including mid-body).
	ErrConnection = errors.New("registry connection failed")
	// ErrNotLoggedIn: Logout found no credentials for the server. Docker
	// treats this as success with a notice; so may the CLI.
	ErrNotLoggedIn = errors.New("not logged in")
)

// classify turns a transport, HTTP or network error met while handling
// object (a reference or digest) on registry host into one wrapping a
// sentinel above. Errors it does not recognise (context cancellation, store
// errors) are returned as they are.
func classify(err error, host, object string, blob bool) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == 401 || te.StatusCode == 403 || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			// The operation's own prefix names the object; the host is what
			// the user needs for the fix.
			return fmt.Errorf("%w: run 'berth login %s'", ErrUnauthorized, host)
		case te.StatusCode == 404 && blob:
			return fmt.Errorf("%w: %s", ErrBlobNotFound, object)
		case te.StatusCode == 404:
			return fmt.Errorf("%w: %s", ErrNotFound, object)
		default:
			return fmt.Errorf("%s: %w: %s: %v", host, ErrServer, object, te.Error())
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isNetworkError(err) {
		return fmt.Errorf("%s: %w: %s: %v", host, ErrConnection, object, err)
	}
	return err
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// isNetworkError reports failures of the connection itself: refused, reset,
// timed out, or closed before the announced body length arrived.
func isNetworkError(err error) bool {
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &oe) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
