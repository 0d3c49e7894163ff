package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// A digest as images write them: "sha256:" and 64 lowercase hex digits.
const digestPrefix = "sha256:"

// ValidateDigest says, in one line, what is wrong with a digest string.
func ValidateDigest(d string) error {
	if !strings.HasPrefix(d, digestPrefix) {
		return fmt.Errorf("%q is not a digest: it must start with %q (as in `docker image inspect`'s RootFS.Layers)", d, digestPrefix)
	}
	h := d[len(digestPrefix):]
	if len(h) != 64 {
		return fmt.Errorf("%q is not a sha256 digest: it needs 64 hex digits after %q, not %d", d, digestPrefix, len(h))
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%q is not a sha256 digest: %q is not a lowercase hex digit", d, c)
		}
	}
	return nil
}

// Digest is the "sha256:<hex>" of some bytes.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return digestPrefix + hex.EncodeToString(sum[:])
}

// DiffID is a layer's identity in an image config (rootfs.diff_ids): the
// sha256 of its UNCOMPRESSED tar, every byte of it. (A registry names the
// same layer by the digest of its gzip-compressed tar: another number.)
func DiffID(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return digestPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// ChainID names a layer together with everything below it: the bottom
// layer's chain ID is its diffID (parent ""), and each layer above has
// sha256 of the text "<parent's chain ID> <its diffID>", both with their
// "sha256:" prefix, one space between. Two images that share their first n
// layers share those n chain IDs, hence the layer store's directories.
func ChainID(parent, diffID string) (string, error) {
	if err := ValidateDigest(diffID); err != nil {
		return "", err
	}
	if parent == "" {
		return diffID, nil
	}
	if err := ValidateDigest(parent); err != nil {
		return "", err
	}
	return Digest([]byte(parent + " " + diffID)), nil
}

// ChainIDs returns the chain ID of each prefix of a stack of diffIDs,
// bottom first: what Docker's image/overlay2/layerdb/sha256/ is keyed by.
func ChainIDs(diffIDs []string) ([]string, error) {
	out := make([]string, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		c, err := ChainID(parent, d)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		out[i], parent = c, c
	}
	return out, nil
}
