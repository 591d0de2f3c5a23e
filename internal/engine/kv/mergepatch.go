package kv

// mergePatch applies an RFC 7386 JSON merge patch to target and returns
// the result; neither argument is modified. A patch that is not an object
// replaces the target; an object patch sets each of its members, a null
// member removes it, and nested objects merge recursively. A target that
// is not an object is treated as an empty one.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, _ := target.(map[string]any)
	out := make(map[string]any, len(tm)+len(pm))
	for k, v := range tm {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// mergeObjects is mergePatch for the data of a secret, which is always an
// object.
func mergeObjects(target, patch map[string]any) map[string]any {
	return mergePatch(target, patch).(map[string]any)
}

// subkeys replaces every leaf of data (a non-object value or an empty
// object) with nil, keeping the nesting, down to maxDepth levels (0 means
// no limit); an object at the depth limit becomes nil too, so no value
// ever leaks. It returns a new map and leaves data alone.
func subkeys(data map[string]any, maxDepth int) map[string]any {
	return subkeysAt(data, 1, maxDepth)
}

func subkeysAt(data map[string]any, depth, maxDepth int) map[string]any {
	out := make(map[string]any, len(data))
	for k, v := range data {
		child, ok := v.(map[string]any)
		if ok && len(child) > 0 && (maxDepth == 0 || depth+1 <= maxDepth) {
			out[k] = subkeysAt(child, depth+1, maxDepth)
			continue
		}
		out[k] = nil
	}
	return out
}
