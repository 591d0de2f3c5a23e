// Package posture reports how exposed a Kubernetes cluster's Secrets are:
// who can reach their contents and by which path, which checks fail, and
// what maturity level the team's secrets management has reached.
//
// # Snapshot
//
// Everything starts from a Snapshot. LoadCluster reads one through
// client-go with paginated list calls only; a read that is refused is a
// Gap, not an error, and a namespaced resource that cannot be listed
// across the cluster is listed namespace by namespace. LoadFiles reads
// `kubectl get -A -o yaml|json` dumps, multi-document YAML, Helm output,
// JSON streams and directories of manifests; documents it cannot decode
// are Problems, kinds it does not use are counted in Skipped, and
// Kubernetes' default ClusterRoles are added when the files bind them
// without defining them. Both loaders drop Secret values as they read
// (only key names and the public tls.crt and ca.crt stay), so no secret
// material is ever held or reported. An EncryptionConfiguration and the
// kube-apiserver manifest can be added for the encryption checks.
//
// # RBAC and escalation
//
// The rbac subpackage evaluates RBAC as the apiserver does; its answers
// are checked against a real apiserver's SubjectAccessReviews in the live
// tests. On top of it the escalation graph links subjects to what they
// can become and reach: reading Secrets; creating pods or any pod
// controller (then mounting any Secret and running as any service account
// of the namespace); updating pods, exec, attach and ephemeral containers
// (then the Secrets and token of running pods); impersonating users,
// groups and service accounts; binding roles and escalating them;
// minting service-account tokens or token Secrets; reading stored legacy
// tokens; nodes/proxy; approving client certificates; registering
// admission webhooks; and, transitively, whatever the service accounts
// reached that way can do. Each edge carries the reason and the bindings
// behind it; Paths returns the shortest path from each subject to each set
// of Secrets it reaches.
//
// # Checks and maturity
//
// Analyze runs every check (Checks lists them: id, severity, CIS
// Kubernetes Benchmark control, aspect, the maturity level it gates,
// remediation) and rolls the results into a Maturity: level 0 Exposed to
// 4 Ephemeral, reached when every gate of the level and those below
// passes; a 0-100 score of severity-weighted pass rates, overall and per
// aspect; and the next three fixes. A check that lacks its input says so
// (status not-evaluated) and blocks its level rather than passing it.
//
// The report is written as a table, JSON, SARIF 2.1.0 or a self-contained
// HTML page that draws the paths to each set of Secrets.
package posture
