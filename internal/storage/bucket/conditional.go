package bucket

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/thanos-io/objstore/exthttp"
	"github.com/thanos-io/objstore/providers/s3"
)

// ConditionalUploader is a bucket that writes an object only if it is as
// the writer last saw it: S3's conditional writes (PUT with If-None-Match:
// * or If-Match: ETAG). It is what a lease object needs, so that of two
// instances racing to take or renew it one wins and the other knows it
// lost. thanos-io/objstore has no such call; Objstore makes it with the S3
// client directly, and Dir under a lock file.
type ConditionalUploader interface {
	// GetWithETag reads a whole (small) object and its ETag. A missing
	// object is an error for which IsObjNotFoundErr is true.
	GetWithETag(ctx context.Context, name string) (data []byte, etag string, err error)
	// UploadIfAbsent writes the object only if none of that name exists,
	// and returns its ETag; otherwise ErrPreconditionFailed.
	UploadIfAbsent(ctx context.Context, name string, data []byte) (etag string, err error)
	// UploadIfMatch replaces the object only if its ETag is still etag,
	// and returns the new ETag; otherwise (replaced or deleted since)
	// ErrPreconditionFailed.
	UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (newETag string, err error)
	// IsObjNotFoundErr says whether err means that an object is missing.
	IsObjNotFoundErr(err error) bool
}

// ErrPreconditionFailed is the error of a conditional upload whose
// condition did not hold: the object exists (UploadIfAbsent), or is not
// the one of the ETag given (UploadIfMatch).
var ErrPreconditionFailed = errors.New("precondition failed: the object changed")

// ErrNoConditionalWrites is the error of the conditional calls of an
// Objstore whose provider Hearth cannot make them with (not S3).
var ErrNoConditionalWrites = errors.New("this bucket has no conditional writes")

// newConditionalS3 returns an S3 client for the conditional writes of the
// bucket of cfg, built as objstore's S3 provider builds its own
// (credentials from the configuration, else the environment, the AWS
// credentials file, the instance metadata), which has no such call and
// does not share its client.
func newConditionalS3(cfg s3.Config) (*minio.Client, error) {
	var chain []credentials.Provider
	if cfg.AccessKey != "" {
		chain = []credentials.Provider{&credentials.Static{Value: credentials.Value{
			AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, SessionToken: cfg.SessionToken,
			SignerType: credentials.SignatureV4,
		}}}
	} else {
		chain = []credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}, Endpoint: cfg.STSEndpoint},
		}
	}
	var tpt http.RoundTripper
	tpt, err := exthttp.DefaultTransport(cfg.HTTPConfig)
	if err != nil {
		return nil, err
	}
	if cfg.HTTPConfig.Transport != nil {
		tpt = cfg.HTTPConfig.Transport
	}
	return minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewChainCredentials(chain),
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		Transport:    tpt,
		BucketLookup: cfg.BucketLookupType.MinioType(),
		MaxRetries:   cfg.MaxRetries,
	})
}

var _ ConditionalUploader = (*Objstore)(nil)

// GetWithETag reads the object and its ETag in one GET.
func (o *Objstore) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	if err := o.checkName(name); err != nil {
		return nil, "", err
	}
	if o.cond == nil {
		return nil, "", fmt.Errorf("bucket %s: %w", o.name, ErrNoConditionalWrites)
	}
	obj, err := o.cond.GetObject(ctx, o.condBucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", o.fail(ctx, "get", name, err)
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return nil, "", o.fail(ctx, "get", name, err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, "", o.fail(ctx, "get", name, err)
	}
	return data, st.ETag, nil
}

// UploadIfAbsent writes the object with If-None-Match: *.
func (o *Objstore) UploadIfAbsent(ctx context.Context, name string, data []byte) (string, error) {
	var opts minio.PutObjectOptions
	opts.SetMatchETagExcept("*")
	return o.putConditional(ctx, name, data, opts)
}

// UploadIfMatch writes the object with If-Match: etag.
func (o *Objstore) UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (string, error) {
	if etag == "" || etag == "*" {
		return "", fmt.Errorf("bucket %s: upload %s: if-match needs an ETag, not %q", o.name, name, etag)
	}
	var opts minio.PutObjectOptions
	opts.SetMatchETag(etag)
	return o.putConditional(ctx, name, data, opts)
}

func (o *Objstore) putConditional(ctx context.Context, name string, data []byte, opts minio.PutObjectOptions) (string, error) {
	if err := o.checkName(name); err != nil {
		return "", err
	}
	if o.cond == nil {
		return "", fmt.Errorf("bucket %s: %w", o.name, ErrNoConditionalWrites)
	}
	opts.ContentType = "application/json"
	info, err := o.cond.PutObject(ctx, o.condBucket, name, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		// 412 for a condition that did not hold; AWS answers 409 to
		// two conditional writes of one name racing.
		if resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" ||
			resp.Code == "ConditionalRequestConflict" {
			return "", fmt.Errorf("bucket %s: upload %s: %w", o.name, name, ErrPreconditionFailed)
		}
		// S3 answers a condition on a missing object with 404.
		if resp.Code == "NoSuchKey" && opts.Header().Get("If-Match") != "" {
			return "", fmt.Errorf("bucket %s: upload %s: %w", o.name, name, ErrPreconditionFailed)
		}
		return "", o.fail(ctx, "upload", name, err)
	}
	return info.ETag, nil
}

// lockFile is the file of Dir's lock over conditional writes; Iter does
// not list it (tempPrefix).
const lockFile = tempPrefix + "conditional.lock"

var _ ConditionalUploader = (*Dir)(nil)

// dirCondMu serializes the conditional writes of the Dirs of one process;
// flock serializes those of processes sharing a directory, on a local or
// network file system that has it.
var dirCondMu sync.Mutex

// lock takes the lock over the conditional writes of d.
func (d *Dir) lock() (func(), error) {
	dirCondMu.Lock()
	f, err := os.OpenFile(filepath.Join(d.root, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		dirCondMu.Unlock()
		return nil, fmt.Errorf("bucket %s: lock: %w", d.root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		dirCondMu.Unlock()
		return nil, fmt.Errorf("bucket %s: lock: %w", d.root, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		dirCondMu.Unlock()
	}, nil
}

// dirETag is a Dir object's ETag: a hash of its content, which changes
// with every upload that changes it. Two uploads of the same bytes have
// one ETag; the lease's content holds its expiry, which each renewal
// moves.
func dirETag(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:16])
}

// GetWithETag reads the object and its ETag.
func (d *Dir) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	rc, err := d.Get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", err
	}
	return data, dirETag(data), nil
}

// UploadIfAbsent writes the object if there is none, under the lock.
func (d *Dir) UploadIfAbsent(ctx context.Context, name string, data []byte) (string, error) {
	unlock, err := d.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if ok, err := d.Exists(ctx, name); err != nil {
		return "", err
	} else if ok {
		return "", fmt.Errorf("bucket %s: upload %s: %w", d.root, name, ErrPreconditionFailed)
	}
	if err := d.Upload(ctx, name, bytes.NewReader(data)); err != nil {
		return "", err
	}
	return dirETag(data), nil
}

// UploadIfMatch replaces the object if its content hashes to etag, under
// the lock.
func (d *Dir) UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (string, error) {
	unlock, err := d.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	_, cur, err := d.GetWithETag(ctx, name)
	if d.IsObjNotFoundErr(err) || (err == nil && !strings.EqualFold(cur, etag)) {
		return "", fmt.Errorf("bucket %s: upload %s: %w", d.root, name, ErrPreconditionFailed)
	}
	if err != nil {
		return "", err
	}
	if err := d.Upload(ctx, name, bytes.NewReader(data)); err != nil {
		return "", err
	}
	return dirETag(data), nil
}
