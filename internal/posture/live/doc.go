// Package live holds posture's tests against a real kube-apiserver and
// etcd (internal/k8stest): the snapshot loader over client-go, with full
// and partial read rights, compared with a file load of the same objects,
// and the RBAC engine compared with the apiserver's own authorizer through
// SubjectAccessReviews. It has no non-test code.
package live
