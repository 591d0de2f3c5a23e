package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// labelSelector is a Kubernetes metav1.LabelSelector, the form Vault's
// bound_service_account_namespace_selector takes (as JSON or YAML).
type labelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels,omitempty"`
	MatchExpressions []labelExpr       `json:"matchExpressions,omitempty"`
}

type labelExpr struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// parseSelector reads a selector in JSON or YAML and checks it. The
// empty string is no selector (nil, nil).
func parseSelector(s string) (*labelSelector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	raw := []byte(s)
	if !json.Valid(raw) {
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("not JSON or YAML: %v", err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("YAML that has no JSON form: %v", err)
		}
		raw = j
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sel labelSelector
	if err := dec.Decode(&sel); err != nil {
		return nil, fmt.Errorf("want a LabelSelector such as {\"matchLabels\":{\"team\":\"a\"}}: %v", err)
	}
	var errs []error
	for k := range sel.MatchLabels {
		if k == "" {
			errs = append(errs, errors.New("matchLabels has an empty key"))
		}
	}
	for i, e := range sel.MatchExpressions {
		if e.Key == "" {
			errs = append(errs, fmt.Errorf("matchExpressions[%d]: empty key", i))
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				errs = append(errs, fmt.Errorf("matchExpressions[%d]: operator %s needs values", i, e.Operator))
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				errs = append(errs, fmt.Errorf("matchExpressions[%d]: operator %s takes no values", i, e.Operator))
			}
		default:
			errs = append(errs, fmt.Errorf("matchExpressions[%d]: operator %q: want In, NotIn, Exists or DoesNotExist", i, e.Operator))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &sel, nil
}

// matches reports whether labels satisfy the selector. As in Kubernetes,
// an empty selector matches everything.
func (s *labelSelector) matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case "In":
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}
