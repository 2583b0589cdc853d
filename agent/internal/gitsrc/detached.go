package gitsrc

import (
	"context"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/file"
)

// go-git resolves the HEAD a remote advertises to a branch on every head
// check and fetch. A local repository whose HEAD is detached at a commit no
// branch points at (a CI checkout, `git checkout <sha>`) advertises HEAD
// without a symref, so that fails with "reference not found" although the
// tracked branch is there. The agent never reads the remote's HEAD, so for
// local repositories (the "file" transport, which local paths use too) a
// HEAD that cannot be resolved is dropped from the advertisement. Where
// go-git resolves it, nothing changes.
func init() {
	client.InstallProtocol("file", detachedHeadTolerant{file.DefaultClient})
}

// detachedHeadTolerant wraps a transport so that its upload-pack sessions
// drop an advertised HEAD that does not resolve to a branch.
type detachedHeadTolerant struct{ transport.Transport }

func (t detachedHeadTolerant) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	s, err := t.Transport.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return detachedHeadSession{s}, nil
}

type detachedHeadSession struct{ transport.UploadPackSession }

func (s detachedHeadSession) AdvertisedReferences() (*packp.AdvRefs, error) {
	return dropUnresolvedHead(s.UploadPackSession.AdvertisedReferences())
}

func (s detachedHeadSession) AdvertisedReferencesContext(ctx context.Context) (*packp.AdvRefs, error) {
	return dropUnresolvedHead(s.UploadPackSession.AdvertisedReferencesContext(ctx))
}

// dropUnresolvedHead clears ar.Head when go-git could not resolve it to a
// reference; the branches and tags stay as advertised.
func dropUnresolvedHead(ar *packp.AdvRefs, err error) (*packp.AdvRefs, error) {
	if err != nil || ar == nil || ar.Head == nil {
		return ar, err
	}
	if _, rerr := ar.AllReferences(); rerr != nil {
		ar.Head = nil
	}
	return ar, nil
}
