// Package password hashes user passwords with argon2id (RFC 9106) in the PHC
// string format, and verifies them in constant time.
//
// Each hash or check takes 19 MiB for a few tens of milliseconds, so the
// package bounds how many run at once across the process: beyond the bound a
// call waits its turn, for at most MaxWait, and then fails with ErrBusy.
// Unauthenticated requests (logins, sign-ups) cannot make the process take
// more than Concurrency × 19 MiB for hashing, however many arrive together.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Parameters follow OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane).
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	keyLen    = 32
	saltLen   = 16
	// maxMemoryKiB bounds what a stored hash may ask Verify to allocate.
	maxMemoryKiB = 64 * 1024
)

// Concurrency is how many hashes or checks run at once: one per CPU, at
// least two.
var Concurrency = max(2, runtime.GOMAXPROCS(0))

// MaxWait is how long a call waits for its turn before ErrBusy.
const MaxWait = 5 * time.Second

// ErrBusy: too many password checks at once; the caller should answer
// "try again in a moment" rather than queue without bound.
var ErrBusy = errors.New("password: too many checks at once; try again in a moment")

var (
	slots    = make(chan struct{}, Concurrency)
	inFlight atomic.Int64
)

// InFlight is how many hashes or checks are running now (for metrics and
// tests).
func InFlight() int64 { return inFlight.Load() }

func acquire(ctx context.Context) (release func(), err error) {
	select {
	case slots <- struct{}{}:
	default:
		t := time.NewTimer(MaxWait)
		defer t.Stop()
		select {
		case slots <- struct{}{}:
		case <-t.C:
			return nil, ErrBusy
		case <-ctx.Done():
			return nil, ErrBusy
		}
	}
	inFlight.Add(1)
	return func() { inFlight.Add(-1); <-slots }, nil
}

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of password under a fresh salt.
func Hash(ctx context.Context, password string) (string, error) {
	release, err := acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, passes, memoryKiB, lanes, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// ErrMismatch is returned when the password does not match the hash.
var ErrMismatch = errors.New("password: mismatch")

// Verify checks password against a PHC string made by Hash (with whatever
// parameters it was made with, up to 64 MiB).
func Verify(ctx context.Context, encoded, password string) error {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("password: not an argon2id hash")
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return errors.New("password: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > maxMemoryKiB || t == 0 || t > 10 || p == 0 {
		return errors.New("password: bad argon2 parameters")
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return errors.New("password: bad argon2 encoding")
	}
	release, err := acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
