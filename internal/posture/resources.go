package posture

import (
	"fmt"
	"strings"

	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// builtinGroups maps the built-in resources (and kubectl's short names)
// to their API group, for requests written without a group.
var builtinGroups = map[string]string{
	"pods": "", "secrets": "", "configmaps": "", "serviceaccounts": "", "services": "", "namespaces": "",
	"nodes": "", "persistentvolumes": "", "persistentvolumeclaims": "", "events": "", "endpoints": "",
	"replicationcontrollers": "", "limitranges": "", "resourcequotas": "", "podtemplates": "",
	"users": "", "groups": "", "bindings": "", "componentstatuses": "",
	"deployments": "apps", "replicasets": "apps", "statefulsets": "apps", "daemonsets": "apps", "controllerrevisions": "apps",
	"jobs": "batch", "cronjobs": "batch",
	"roles": "rbac.authorization.k8s.io", "rolebindings": "rbac.authorization.k8s.io",
	"clusterroles": "rbac.authorization.k8s.io", "clusterrolebindings": "rbac.authorization.k8s.io",
	"ingresses": "networking.k8s.io", "networkpolicies": "networking.k8s.io", "ingressclasses": "networking.k8s.io",
	"certificatesigningrequests": "certificates.k8s.io", "signers": "certificates.k8s.io",
	"mutatingwebhookconfigurations": "admissionregistration.k8s.io", "validatingwebhookconfigurations": "admissionregistration.k8s.io",
	"validatingadmissionpolicies": "admissionregistration.k8s.io", "validatingadmissionpolicybindings": "admissionregistration.k8s.io",
	"customresourcedefinitions": "apiextensions.k8s.io", "storageclasses": "storage.k8s.io", "csidrivers": "storage.k8s.io",
	"tokenreviews": "authentication.k8s.io", "subjectaccessreviews": "authorization.k8s.io",
	"selfsubjectaccessreviews": "authorization.k8s.io", "leases": "coordination.k8s.io",
	"poddisruptionbudgets": "policy", "horizontalpodautoscalers": "autoscaling", "priorityclasses": "scheduling.k8s.io",
	"runtimeclasses": "node.k8s.io", "endpointslices": "discovery.k8s.io",
}

var shortNames = map[string]string{
	"po": "pods", "cm": "configmaps", "sa": "serviceaccounts", "svc": "services", "ns": "namespaces", "no": "nodes",
	"pv": "persistentvolumes", "pvc": "persistentvolumeclaims", "ev": "events", "ep": "endpoints",
	"rc": "replicationcontrollers", "deploy": "deployments", "rs": "replicasets", "sts": "statefulsets",
	"ds": "daemonsets", "cj": "cronjobs", "ing": "ingresses", "netpol": "networkpolicies",
	"csr": "certificatesigningrequests", "crd": "customresourcedefinitions", "sc": "storageclasses",
	"pdb": "poddisruptionbudgets", "hpa": "horizontalpodautoscalers", "secret": "secrets", "pod": "pods",
}

// ParseRequest builds a request from `who-can` arguments: VERB and
// RESOURCE[.GROUP][/SUBRESOURCE], or a non-resource URL starting with "/".
// A resource without a group that is not built in is taken as core with a
// warning.
func ParseRequest(verb, resource, namespace, name string) (rbac.Request, string, error) {
	if verb == "" || resource == "" {
		return rbac.Request{}, "", fmt.Errorf("want VERB and RESOURCE")
	}
	if strings.HasPrefix(resource, "/") {
		if namespace != "" || name != "" {
			return rbac.Request{}, "", fmt.Errorf("a non-resource URL has no namespace or name")
		}
		return rbac.Request{Verb: verb, Path: resource}, "", nil
	}
	res, sub, _ := strings.Cut(strings.ToLower(resource), "/")
	if strings.Contains(sub, "/") {
		return rbac.Request{}, "", fmt.Errorf("resource %q: want RESOURCE[.GROUP][/SUBRESOURCE]", resource)
	}
	res, group, hasGroup := strings.Cut(res, ".")
	if full, ok := shortNames[res]; ok {
		res = full
	}
	warning := ""
	if !hasGroup {
		g, ok := builtinGroups[res]
		if !ok {
			warning = fmt.Sprintf("resource %q is not built in; taking it as core (write RESOURCE.GROUP for others)", res)
		}
		group = g
	}
	if group == "core" {
		group = ""
	}
	return rbac.Request{Verb: verb, Group: group, Resource: res, Subresource: sub, Namespace: namespace, Name: name}, warning, nil
}

// Permissions lists the effective rules of subject s in the snapshot.
func Permissions(s *Snapshot, sub rbac.Subject) []rbac.Grant {
	eng := rbac.New(s.Roles, s.ClusterRoles, s.RoleBindings, s.ClusterRoleBindings)
	return eng.Rules(sub.Identity())
}

// WhoCan lists the subjects allowed request r in the snapshot, with the
// binding and role that grant it, and the engine's problems.
func WhoCan(s *Snapshot, r rbac.Request, anyName bool) ([]rbac.Grant, []string) {
	eng := rbac.New(s.Roles, s.ClusterRoles, s.RoleBindings, s.ClusterRoleBindings)
	return eng.WhoCan(r, anyName), eng.Problems()
}

// Paths computes every subject's paths to secret contents; with only set,
// just that subject's (its inherited paths included).
func Paths(s *Snapshot, only *rbac.Subject) []SubjectAccess {
	eng := rbac.New(s.Roles, s.ClusterRoles, s.RoleBindings, s.ClusterRoleBindings)
	g := newGraph(s, eng, workloads(s))
	if only != nil {
		acc := g.reach(g.node(subjectNode(*only)))
		return []SubjectAccess{{Subject: *only, Access: acc}}
	}
	var out []SubjectAccess
	for _, sa := range g.accessAll() {
		var own []Access
		for _, a := range sa.Access {
			if !a.Inherited {
				own = append(own, a)
			}
		}
		if len(own) > 0 {
			out = append(out, SubjectAccess{Subject: sa.Subject, Access: own})
		}
	}
	return out
}
