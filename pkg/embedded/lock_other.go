//go:build !unix

package embedded

// lockFile does nothing where flock is not available: keeping two processes off
// one snapshot file is then the user's business.
func lockFile(string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
