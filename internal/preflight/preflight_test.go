package preflight

import "testing"

// The not-root hint repeats the learner's command line, quoted so that it
// can be pasted back into a shell as it is.
func TestShellQuoteKeepsPlainWordsAndQuotesTheRest(t *testing.T) {
	for in, want := range map[string]string{
		"run":          "run",
		"--cpus=0.2":   "--cpus=0.2",
		"/bin/sh":      "/bin/sh",
		"echo $$":      `'echo $$'`,
		"it's":         `'it'\''s'`,
		"":             "''",
		"a b":          "'a b'",
		"64m":          "64m",
		"/tmp/x:/data": "/tmp/x:/data",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
