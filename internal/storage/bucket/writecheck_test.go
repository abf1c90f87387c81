package bucket

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// refusing is a bucket whose keys may read but not write or delete: the
// errors an S3 store answers for a read-only policy.
type refusing struct {
	Bucket
	upload, delete error
}

func (r refusing) Upload(ctx context.Context, name string, rd io.Reader) error {
	if r.upload != nil {
		return r.upload
	}
	return r.Bucket.Upload(ctx, name, rd)
}

func (r refusing) Delete(ctx context.Context, name string) error {
	if r.delete != nil {
		return r.delete
	}
	return r.Bucket.Delete(ctx, name)
}

func TestCheckWrite(t *testing.T) {
	denied := errors.New("Access Denied.")
	for _, c := range []struct {
		name           string
		upload, delete error
		want           string // "" for no error
	}{
		{"may write", nil, nil, ""},
		{"may not upload", denied, nil, "upload " + WriteCheckPrefix},
		{"may not delete", nil, denied, "delete " + WriteCheckPrefix},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, root := newTestDir(t)
			err := CheckWrite(context.Background(), refusing{Bucket: d, upload: c.upload, delete: c.delete}, 5*time.Second)
			if c.want == "" {
				if err != nil {
					t.Fatalf("CheckWrite: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, denied) || !strings.Contains(err.Error(), d.Name()) {
				t.Fatalf("CheckWrite: %v; want an error naming the bucket, %q and the store's answer", err, c.want)
			}
			if c.delete == nil {
				if left := files(t, root); len(left) != 0 {
					t.Errorf("CheckWrite left %v in the bucket", left)
				}
			}
		})
	}
}
