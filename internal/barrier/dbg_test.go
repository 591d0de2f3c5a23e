package barrier

import ("fmt"; "testing")

func TestDbg(t *testing.T) {
	b, _, root := newTestBarrier(t)
	v := "%s"
	t.Logf("%q", fmt.Sprintf(v, b))
	t.Logf("%x", root)
}
