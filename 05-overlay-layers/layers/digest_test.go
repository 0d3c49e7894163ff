package layers

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

func TestChainIDsMatchAnIndependentDigest(t *testing.T) {
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	// Computed here by hand, from the rule's text, not with ChainID.
	sum := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	c2 := sum(d("a") + " " + d("b"))
	c3 := sum(c2 + " " + d("c"))
	for _, tc := range []struct {
		diffIDs, want []string
	}{
		{[]string{d("a")}, []string{d("a")}},
		{[]string{d("a"), d("b")}, []string{d("a"), c2}},
		{[]string{d("a"), d("b"), d("c")}, []string{d("a"), c2, c3}},
		{nil, []string{}},
	} {
		got, err := ChainIDs(tc.diffIDs)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ChainIDs(%v) = %v, want %v", tc.diffIDs, got, tc.want)
		}
	}
	// The text hashed is exactly "<parent> <diffID>": 71+1+71 bytes.
	if len(d("a")+" "+d("b")) != 143 {
		t.Fatal("digest strings are not 71 bytes")
	}
	// Order matters: the same layers in another order are another chain.
	swapped, _ := ChainIDs([]string{d("b"), d("a")})
	if swapped[1] == c2 {
		t.Error("chain ID ignores the order of layers")
	}
}

func TestBadDigestsGetAClearError(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                                     `must start with "sha256:"`,
		"sha256:abc":                              "needs 64 hex digits",
		"sha256:" + strings.Repeat("A", 64):       "not a lowercase hex digit",
		"sha512:" + strings.Repeat("a", 64):       `must start with "sha256:"`,
		"sha256:" + strings.Repeat("a", 64) + " ": "needs 64 hex digits",
	} {
		_, err := ChainIDs([]string{"sha256:" + strings.Repeat("0", 64), in})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "layer 2") {
			t.Errorf("ChainIDs with %q: error %v, want one naming layer 2 and %q", in, err, want)
		}
	}
}
