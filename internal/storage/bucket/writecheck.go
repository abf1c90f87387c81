package bucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// WriteCheckPrefix starts the name of the object CheckWrite writes and
// deletes, at the bucket's root: an object, not a directory, so that a
// listing of tenants never takes it for one.
const WriteCheckPrefix = "hearth-write-check-"

// CheckWrite uploads a small object to the root of b and deletes it,
// within timeout: keys that may list the bucket but not write to it
// (read-only keys, a policy without s3:PutObject or s3:DeleteObject)
// pass Check, and would otherwise be found at the first cut, with the
// writes of a whole block period held in the log meanwhile. It is for
// the instances that write blocks, not for queriers.
func CheckWrite(ctx context.Context, b Bucket, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	name := WriteCheckPrefix + hex.EncodeToString(rnd[:])
	noAnswer := func(op string, err error) error {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("bucket %s: %s %s: no answer within %s", b.Name(), op, name, timeout)
		}
		return fmt.Errorf("bucket %s: %s %s: %w", b.Name(), op, name, err)
	}
	if err := b.Upload(ctx, name, strings.NewReader("hearth checks that it may write here\n")); err != nil {
		return noAnswer("upload", err)
	}
	if err := b.Delete(ctx, name); err != nil && !b.IsObjNotFoundErr(err) {
		return noAnswer("delete", err)
	}
	return nil
}
