// Package compat holds compatibility tests that drive a real coffer server
// process with the clients people already run: OpenBao's and HashiCorp's
// Go API clients. It is a separate module so those clients stay out of
// coffer's own module graph.
package compat
