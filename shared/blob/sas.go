package blob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// SAS URL lifetimes: DefaultSASTTL when SASOptions.TTL is zero, never more than MaxSASTTL.
const (
	DefaultSASTTL = 5 * time.Minute
	MaxSASTTL     = time.Hour
)

// SASOptions shape a read URL: its lifetime and the response headers the service sets when the
// URL is opened (a download's file name, its content type).
type SASOptions struct {
	TTL                             time.Duration
	ContentDisposition, ContentType string
}

// ErrSASUnsupported: the Store can sign no SAS (opened with a connection string without an
// account key).
var ErrSASUnsupported = errors.New("blob: this storage client cannot sign a SAS")

// ReadURL returns a read-only SAS URL of exactly container/name (signed resource b: one blob, no
// listing, no other name), valid from one minute ago (clock skew) for o.TTL. With a connection
// string (Azurite) it is a shared-key SAS; with the managed identity a user-delegation SAS,
// whose delegation key is fetched once and reused while it is valid for the whole TTL. The URL
// is HTTPS-only unless the account endpoint is a loopback HTTP one (Azurite). The URL is a
// bearer credential: never log it.
func (s *Store) ReadURL(ctx context.Context, container, name string, o SASOptions) (string, error) {
	ttl := o.TTL
	switch {
	case ttl <= 0:
		ttl = DefaultSASTTL
	case ttl > MaxSASTTL:
		ttl = MaxSASTTL
	}
	if container == "" || name == "" {
		return "", errors.New("blob: a SAS needs a container and a blob name")
	}
	blobURL := s.c.ServiceClient().NewContainerClient(container).NewBlobClient(name).URL()
	now := time.Now().UTC()
	v := sas.BlobSignatureValues{
		Protocol:           sas.ProtocolHTTPS,
		StartTime:          now.Add(-time.Minute),
		ExpiryTime:         now.Add(ttl),
		Permissions:        (&sas.BlobPermissions{Read: true}).String(),
		ContainerName:      container,
		BlobName:           name,
		ContentDisposition: o.ContentDisposition,
		ContentType:        o.ContentType,
	}
	if loopbackHTTP(blobURL) {
		v.Protocol = sas.ProtocolHTTPSandHTTP
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	if s.sharedKey != nil {
		qp, err = v.SignWithSharedKey(s.sharedKey)
	} else if !s.tokenCred {
		return "", ErrSASUnsupported
	} else {
		cred, cerr := s.delegation.get(ctx, s, now, ttl)
		if cerr != nil {
			return "", cerr
		}
		qp, err = v.SignWithUserDelegation(cred)
	}
	if err != nil {
		return "", fmt.Errorf("blob: signing a SAS: %w", ErrUnavailable)
	}
	return blobURL + "?" + qp.Encode(), nil
}

// delegationCache holds the user delegation credential (valid for delegationKeyLife) and
// renews it when it would expire before a new URL does.
type delegationCache struct {
	mu      sync.Mutex
	cred    *service.UserDelegationCredential
	expires time.Time
}

// delegationKeyLife is how long a fetched user delegation key is valid (the service allows 7 days).
const delegationKeyLife = 24 * time.Hour

func (d *delegationCache) get(ctx context.Context, s *Store, now time.Time, ttl time.Duration) (*service.UserDelegationCredential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cred != nil && now.Add(ttl).Before(d.expires) {
		return d.cred, nil
	}
	start, expiry := now.Add(-time.Minute), now.Add(delegationKeyLife)
	cred, err := s.c.ServiceClient().GetUserDelegationCredential(ctx, service.KeyInfo{
		Start: to.Ptr(start.Format(sas.TimeFormat)), Expiry: to.Ptr(expiry.Format(sas.TimeFormat)),
	}, nil)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, translate(err)
	}
	d.cred, d.expires = cred, expiry
	return cred, nil
}

// loopbackHTTP reports whether u is a plain-HTTP URL on a loopback host (a local Azurite).
func loopbackHTTP(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// connStringAccount returns the AccountName and AccountKey of a storage connection string.
func connStringAccount(cs string) (name, key string) {
	for _, part := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "accountname":
			name = v
		case "accountkey":
			key = v
		}
	}
	return name, key
}
