package kmsplugin

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cofferhq/coffer/internal/k8s/kclient"
)

// RewriteOptions configure RewriteSecrets.
type RewriteOptions struct {
	// Namespace limits the rewrite to one namespace; all when empty.
	Namespace string
	// PageSize is how many Secrets one list call returns; 100 when zero.
	PageSize int64
	// Logger receives progress and per-Secret failures (names, never
	// data); discarded when nil.
	Logger *slog.Logger
}

// RewriteResult counts what RewriteSecrets did.
type RewriteResult struct {
	Listed    int `json:"listed"`
	Rewritten int `json:"rewritten"` // stored again, or changed by someone else meanwhile
	Current   int `json:"current"`   // already under the current key id: the update was a no-op
	Gone      int `json:"gone"`      // deleted between list and update
	Failed    int `json:"failed"`
}

// RewriteSecrets writes every Secret back unchanged, page by page, so the
// apiserver stores each under its current KMS key id: the step that
// follows a transit key rotation. The apiserver treats data under an old
// key id as stale and writes it even though nothing changed; data already
// under the current id is left as it is. A conflict means another writer
// stored the Secret meanwhile, which re-encrypted it too. Failures are
// counted and logged and the rest carry on; the error reports them.
func RewriteSecrets(ctx context.Context, client *kclient.Client, opts RewriteOptions) (RewriteResult, error) {
	var res RewriteResult
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	cont := ""
	for {
		page := &corev1.SecretList{}
		err := client.List(ctx, kclient.Path("", "v1", opts.Namespace, "secrets"), metav1.ListOptions{Limit: opts.PageSize, Continue: cont}, page)
		if apierrors.IsResourceExpired(err) {
			// The continue token outlived etcd's compaction; carry on from
			// the token the apiserver offers for an inconsistent list.
			next := ""
			if st, ok := err.(apierrors.APIStatus); ok {
				next = st.Status().ListMeta.Continue
			}
			if next == "" {
				return res, fmt.Errorf("list secrets: %w (run the rewrite again: Secrets already rewritten are skipped quickly)", err)
			}
			logger.Warn("list continuation expired: continuing from the apiserver's inconsistent-list token")
			cont = next
			continue
		}
		if err != nil {
			return res, fmt.Errorf("list secrets: %w", err)
		}
		for i := range page.Items {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			res.Listed++
			rewriteOne(ctx, client, &page.Items[i], &res, logger)
		}
		logger.Info("rewrite progress", "listed", res.Listed, "rewritten", res.Rewritten, "current", res.Current,
			"gone", res.Gone, "failed", res.Failed)
		if cont = page.Continue; cont == "" {
			break
		}
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%d of %d secrets could not be rewritten (see the log); run the rewrite again", res.Failed, res.Listed)
	}
	return res, nil
}

func rewriteOne(ctx context.Context, client *kclient.Client, s *corev1.Secret, res *RewriteResult, logger *slog.Logger) {
	out := &corev1.Secret{}
	err := client.Update(ctx, kclient.Path("", "v1", s.Namespace, "secrets")+"/"+url.PathEscape(s.Name), "coffer-kms-rewrite", s, out)
	switch {
	case err == nil && out.ResourceVersion == s.ResourceVersion:
		res.Current++
	case err == nil, apierrors.IsConflict(err):
		res.Rewritten++
	case apierrors.IsNotFound(err):
		res.Gone++
	default:
		res.Failed++
		logger.Warn("rewrite secret", "namespace", s.Namespace, "name", s.Name, "err", err)
	}
}
