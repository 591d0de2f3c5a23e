// Package e2e holds end-to-end tests that run real coffer server
// processes on real bbolt files: crash safety, plaintext never on disk or
// in logs, the bad-input catalogue and the CLI. It has no non-test code.
package e2e
