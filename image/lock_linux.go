package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// gc.lock is taken with flock(2): the lock belongs to the open file
// description, so it works between goroutines of one process (each call opens
// its own) as well as between processes, and the kernel drops it when the
// holder dies, so a crashed pull can never wedge GC.

const (
	lockShared    = unix.LOCK_SH
	lockExclusive = unix.LOCK_EX
)

// tryLock takes gc.lock once without waiting; ok reports whether it got it.
func (s *Store) tryLock(how int) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(s.lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("flock %s: %w", s.lockPath, err)
	}
	// Closing the only descriptor releases the flock.
	return func() { f.Close() }, true, nil
}

// lock takes gc.lock, polling so that ctx can interrupt the wait (a
// blocking flock cannot be cancelled).
func (s *Store) lock(ctx context.Context, how int) (unlock func(), err error) {
	delay := time.Millisecond
	for {
		unlock, ok, err := s.tryLock(how)
		if err != nil || ok {
			return unlock, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
