package posture

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Limits of the file loader. A document over MaxDocument is skipped and
// reported; nesting deeper than maxDepth is rejected.
const (
	MaxDocument = 64 << 20
	maxProblems = 1000
	maxDepth    = 64
)

// ErrNoInput is returned when no file was given.
var ErrNoInput = errors.New("posture: no input files")

// FileOptions configure LoadFiles.
type FileOptions struct {
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Namespace is given to namespaced objects that have none, as
	// `kubectl apply` would; "default" when empty.
	Namespace string
	// EncryptionConfig and APIServerManifest are optional files (see
	// ParseEncryptionConfig and ParseAPIServerManifest).
	EncryptionConfig  string
	APIServerManifest string
	// Now is the snapshot time; time.Now when nil.
	Now func() time.Time
	// NoBuiltinRoles leaves out Kubernetes' default ClusterRoles
	// (cluster-admin, admin, edit, view, system:*), which are otherwise
	// added when the files do not define them, so that bindings to them
	// resolve as in a cluster.
	NoBuiltinRoles bool
}

//go:embed bootstrap_roles.yaml
var bootstrapRoles []byte

// addBuiltinRoles adds the default ClusterRoles s does not define.
func addBuiltinRoles(s *Snapshot) error {
	var list struct {
		Items []rbacv1.ClusterRole `json:"items"`
	}
	if err := yaml.Unmarshal(bootstrapRoles, &list); err != nil {
		return fmt.Errorf("posture: default roles: %w", err)
	}
	have := make(map[string]bool, len(s.ClusterRoles))
	for _, cr := range s.ClusterRoles {
		have[cr.Name] = true
	}
	for i := range list.Items {
		if cr := &list.Items[i]; !have[cr.Name] {
			s.add(cr)
			s.BuiltinRoles++
		}
	}
	return nil
}

// LoadFiles reads Kubernetes objects from files and directories:
// `kubectl get -A -o yaml|json` dumps (kind: List and other lists),
// multi-document YAML, Helm output, JSON objects, arrays and streams.
// Directories are walked for *.yaml, *.yml and *.json (hidden ones
// skipped). Documents that do not decode are recorded in
// Snapshot.Problems and kinds posture does not use in Snapshot.Skipped;
// only an unreadable path is an error.
func LoadFiles(ctx context.Context, paths []string, o FileOptions) (*Snapshot, error) {
	if len(paths) == 0 {
		return nil, ErrNoInput
	}
	l := &fileLoader{snap: &Snapshot{Skipped: map[string]int{}}, ns: o.Namespace}
	if l.ns == "" {
		l.ns = "default"
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p == "-" {
			if o.Stdin == nil {
				return nil, errors.New("posture: no standard input")
			}
			l.readStream(o.Stdin, "<stdin>")
			continue
		}
		if err := l.readPath(ctx, p); err != nil {
			return nil, err
		}
	}
	l.snap.Source = strings.Join(paths, ", ")
	if !o.NoBuiltinRoles {
		if err := addBuiltinRoles(l.snap); err != nil {
			return nil, err
		}
	}
	if err := finish(l.snap, o.EncryptionConfig, o.APIServerManifest, o.Now); err != nil {
		return nil, err
	}
	return l.snap, nil
}

// finish reads the optional configuration files, falls back to a
// kube-apiserver static pod for the flags, and sorts the snapshot.
func finish(s *Snapshot, encryption, manifest string, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	s.Taken = now().UTC().Truncate(time.Second)
	if encryption != "" {
		b, err := os.ReadFile(encryption)
		if err != nil {
			return fmt.Errorf("posture: encryption config: %w", err)
		}
		if s.Encryption, err = ParseEncryptionConfig(b, encryption); err != nil {
			return fmt.Errorf("posture: %w", err)
		}
	}
	if manifest != "" {
		b, err := os.ReadFile(manifest)
		if err != nil {
			return fmt.Errorf("posture: apiserver manifest: %w", err)
		}
		if s.APIServer, err = ParseAPIServerManifest(b, manifest); err != nil {
			return fmt.Errorf("posture: %w", err)
		}
	}
	if s.APIServer == nil {
		for i := range s.Pods {
			if p := &s.Pods[i]; isAPIServerPod(p) {
				if c, ok := apiServerFromPod(p, "Pod kube-system/"+p.Name); ok {
					s.APIServer = c
					break
				}
			}
		}
	}
	if len(s.Skipped) == 0 {
		s.Skipped = nil
	}
	s.Sort()
	return nil
}

type fileLoader struct {
	snap     *Snapshot
	ns       string
	problems int
}

func (l *fileLoader) problem(source, format string, args ...any) {
	l.problems++
	if l.problems == maxProblems+1 {
		l.snap.Problems = append(l.snap.Problems, Problem{Source: source, Reason: "too many problems; the rest are not listed"})
	}
	if l.problems > maxProblems {
		return
	}
	l.snap.Problems = append(l.snap.Problems, Problem{Source: source, Reason: fmt.Sprintf(format, args...)})
}

func (l *fileLoader) readPath(ctx context.Context, root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("posture: %w", err)
	}
	if !fi.IsDir() {
		return l.readFile(root)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			l.problem(p, "%v", err)
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if err := l.readFile(p); err != nil {
				l.problem(p, "%v", err)
			}
		}
		return nil
	})
}

func (l *fileLoader) readFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("posture: %w", err)
	}
	defer f.Close()
	l.readStream(f, p)
	return nil
}

// readStream decodes one input: JSON when it starts with "{" or "[",
// otherwise YAML documents.
func (l *fileLoader) readStream(r io.Reader, source string) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
			continue
		case '{', '[':
			l.readJSON(br, source)
			return
		}
		l.readYAML(br, source)
		return
	}
}

// readJSON decodes a stream of JSON values. A top-level object with an
// "items" array is a list and its items are decoded one at a time, so a
// large dump is never held whole.
func (l *fileLoader) readJSON(r io.Reader, source string) {
	dec := json.NewDecoder(io.LimitReader(r, 1<<40))
	for n := 1; ; n++ {
		src := fmt.Sprintf("%s: value %d", source, n)
		tok, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			l.problem(src, "%v", err)
			return
		}
		switch tok {
		case json.Delim('['):
			if !l.jsonItems(dec, src) {
				return
			}
		case json.Delim('{'):
			if !l.jsonObject(dec, src) {
				return
			}
		default:
			l.problem(src, "not an object or a list")
			return
		}
	}
}

// jsonItems decodes array elements after the opening bracket.
func (l *fileLoader) jsonItems(dec *json.Decoder, src string) bool {
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			l.problem(src, "item %d: %v", i, err)
			return false
		}
		l.object(raw, fmt.Sprintf("%s item %d", src, i), 0)
	}
	_, err := dec.Token() // ']'
	return err == nil
}

// jsonObject reads an object after its opening brace, streaming "items".
func (l *fileLoader) jsonObject(dec *json.Decoder, src string) bool {
	fields := map[string]json.RawMessage{}
	sawItems := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			l.problem(src, "%v", err)
			return false
		}
		key, _ := t.(string)
		if key == "items" {
			t, err := dec.Token()
			if err != nil {
				l.problem(src, "%v", err)
				return false
			}
			if t == json.Delim('[') {
				sawItems = true
				if !l.jsonItems(dec, src) {
					return false
				}
				continue
			}
			if t == nil { // "items": null
				sawItems = true
				continue
			}
			l.problem(src, "items is not a list")
			return false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			l.problem(src, "%v", err)
			return false
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // '}'
		l.problem(src, "%v", err)
		return false
	}
	if sawItems {
		return true
	}
	obj, err := json.Marshal(fields)
	if err != nil {
		l.problem(src, "%v", err)
		return true
	}
	l.object(obj, src, 0)
	return true
}

// readYAML splits r into documents at "---" lines and decodes each.
func (l *fileLoader) readYAML(r *bufio.Reader, source string) {
	var doc bytes.Buffer
	n, start, line := 1, 1, 0
	skipping := false
	flush := func() {
		defer func() { doc.Reset(); skipping = false }()
		src := fmt.Sprintf("%s: document %d (line %d)", source, n, start)
		if skipping {
			l.problem(src, "document larger than %d MiB, skipped", MaxDocument>>20)
			return
		}
		if len(bytes.TrimSpace(doc.Bytes())) == 0 {
			return
		}
		j, err := yaml.YAMLToJSON(doc.Bytes())
		if err != nil {
			l.problem(src, "%v", err)
			return
		}
		l.object(j, src, 0)
	}
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: keep reading it.
			if !skipping && doc.Len()+len(b) <= MaxDocument {
				doc.Write(b)
			} else {
				skipping = true
			}
			continue
		}
		line++
		if isSeparator(b) {
			flush()
			n++
			start = line + 1
		} else if !skipping {
			if doc.Len()+len(b) > MaxDocument {
				skipping = true
			} else {
				doc.Write(b)
			}
		}
		if err != nil {
			if err != io.EOF {
				l.problem(source, "%v", err)
			}
			flush()
			return
		}
	}
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimRight(line[3:], " \t\r\n")
	return len(rest) == 0 || rest[0] == '#' || rest[0] == ' '
}

type typeMeta struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Items      json.RawMessage `json:"items"`
}

// object decodes one JSON object and adds it to the snapshot.
func (l *fileLoader) object(data []byte, src string, depth int) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return
	}
	var tm typeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		l.problem(src, "not a Kubernetes object: %v", err)
		return
	}
	if len(tm.Items) > 0 && !bytes.Equal(tm.Items, []byte("null")) {
		if depth >= maxDepth {
			l.problem(src, "lists nested too deeply")
			return
		}
		var items []json.RawMessage
		if err := json.Unmarshal(tm.Items, &items); err != nil {
			l.problem(src, "items: %v", err)
			return
		}
		for i, it := range items {
			l.object(it, fmt.Sprintf("%s item %d", src, i), depth+1)
		}
		return
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		l.problem(src, "missing apiVersion or kind")
		return
	}
	group, _, _ := strings.Cut(tm.APIVersion, "/")
	if !strings.Contains(tm.APIVersion, "/") {
		group = ""
	}
	target, namespaced := newObject(group, tm.Kind)
	if target == nil {
		if strings.HasSuffix(tm.Kind, "List") {
			return // an empty list
		}
		k := tm.Kind
		if group != "" {
			k += "." + group
		}
		l.snap.Skipped[k]++
		return
	}
	if err := json.Unmarshal(data, target); err != nil {
		l.problem(src, "%s: %v", tm.Kind, err)
		return
	}
	meta := target.(metav1.Object)
	if meta.GetName() == "" {
		l.problem(src, "%s without metadata.name", tm.Kind)
		return
	}
	if namespaced && meta.GetNamespace() == "" {
		meta.SetNamespace(l.ns)
	}
	if !namespaced {
		meta.SetNamespace("")
	}
	l.snap.add(target)
}

// newObject returns a new object for a group and kind posture keeps, and
// whether the kind is namespaced. Any version of the group is accepted.
func newObject(group, kind string) (any, bool) {
	switch group {
	case "":
		switch kind {
		case "Namespace":
			return &corev1.Namespace{}, false
		case "Pod":
			return &corev1.Pod{}, true
		case "ReplicationController":
			return &corev1.ReplicationController{}, true
		case "ServiceAccount":
			return &corev1.ServiceAccount{}, true
		case "Secret":
			return &corev1.Secret{}, true
		case "ConfigMap":
			return &corev1.ConfigMap{}, true
		}
	case "apps", "extensions":
		switch kind {
		case "Deployment":
			return &appsv1.Deployment{}, true
		case "ReplicaSet":
			return &appsv1.ReplicaSet{}, true
		case "StatefulSet":
			return &appsv1.StatefulSet{}, true
		case "DaemonSet":
			return &appsv1.DaemonSet{}, true
		case "Ingress":
			return &networkingv1.Ingress{}, true
		}
	case "batch":
		switch kind {
		case "Job":
			return &batchv1.Job{}, true
		case "CronJob":
			return &batchv1.CronJob{}, true
		}
	case "networking.k8s.io":
		if kind == "Ingress" {
			return &networkingv1.Ingress{}, true
		}
	case "rbac.authorization.k8s.io":
		switch kind {
		case "Role":
			return &rbacv1.Role{}, true
		case "ClusterRole":
			return &rbacv1.ClusterRole{}, false
		case "RoleBinding":
			return &rbacv1.RoleBinding{}, true
		case "ClusterRoleBinding":
			return &rbacv1.ClusterRoleBinding{}, false
		}
	case "admissionregistration.k8s.io":
		switch kind {
		case "MutatingWebhookConfiguration":
			return &admissionregistrationv1.MutatingWebhookConfiguration{}, false
		case "ValidatingWebhookConfiguration":
			return &admissionregistrationv1.ValidatingWebhookConfiguration{}, false
		}
	}
	return nil, false
}
