package detect

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/cofferhq/coffer/internal/scan/rule"
	"os"
)

func TestDbgHits(t *testing.T) {
	f, _ := rule.Default()
	e, _ := New(f)
	data, _ := os.ReadFile("/tmp/typical.txt")
	_ = bytes.MinRead
	cnt := map[string]int{}
	anch := map[string]int{}
	e.ac.scan(data, func(kw int32, end int) {
		for _, ri := range e.kwRules[kw] {
			r := e.rules[ri]
			cnt[r.ID()]++
			if v := assignAhead(data, end-e.ac.kwLen[kw], e.ac.kwLen[kw]); r.anchored && v >= 0 && (!r.Generic || plausibleValue(data, v)) {
				anch[r.ID()]++
			}
		}
	})
	type kv struct{ k string; v int }
	var l []kv
	for k, v := range cnt { l = append(l, kv{k, v}) }
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	for _, x := range l[:min(15, len(l))] { fmt.Println(x.k, x.v, anch[x.k]) }
	fmt.Println(len(data)/1e6, "MB")
}
