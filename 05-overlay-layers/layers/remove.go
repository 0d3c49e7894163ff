package layers

// Removing images, the way `docker rmi` does: a name goes first; an image
// config goes with its last name; a layer goes once no image and no
// container root stands on it. Layers are shared (the same chain ID is the
// same layer), so removing an image frees only the layers it alone used.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Untag removes one name (name:tag; ":latest" if no tag). The image it
// named stays, even with no name left: RemoveImage removes it.
func (s *Store) Untag(name string) error {
	repos, err := s.repositories()
	if err != nil {
		return err
	}
	if _, ok := repos[fullName(name)]; !ok {
		return fmt.Errorf("no image is named %q", name)
	}
	delete(repos, fullName(name))
	return s.writeRepositories(repos)
}

// RemoveImage removes the image config id and every name still pointing
// at it. Its layers stay: RemoveUnusedLayers removes those that no other
// image or container needs.
func (s *Store) RemoveImage(id string) error {
	if err := ValidateDigest(id); err != nil {
		return err
	}
	repos, err := s.repositories()
	if err != nil {
		return err
	}
	for n, i := range repos {
		if i == id {
			delete(repos, n)
		}
	}
	if err := s.writeRepositories(repos); err != nil {
		return err
	}
	if err := os.Remove(s.imagedb(id)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// RemoveUnusedLayers removes every layer on which no image and no
// container root stands, files and record, and returns them. It holds the
// store's lock exclusive meanwhile: no Add can find one of them and hand
// it out while it goes.
func (s *Store) RemoveUnusedLayers() ([]Layer, error) {
	fd, err := unix.Open(s.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return nil, err
	}
	if err := s.finishRemovals(); err != nil {
		return nil, err
	}
	used, err := s.usedLayers()
	if err != nil {
		return nil, err
	}
	all, err := s.Layers()
	if err != nil {
		return nil, err
	}
	var removed []Layer
	for _, l := range all {
		if used[l.ChainID] {
			continue
		}
		if err := s.removeLayer(l.ChainID, l.CacheID); err != nil {
			return removed, err
		}
		removed = append(removed, l)
	}
	return removed, nil
}

// usedLayers is the set of chain IDs some image or container root stands
// on: each one's whole stack.
func (s *Store) usedLayers() (map[string]bool, error) {
	used := map[string]bool{}
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		chain, err := ChainIDs(img.DiffIDs)
		if err != nil {
			return nil, err
		}
		for _, c := range chain {
			used[c] = true
		}
	}
	roots, err := s.ContainerRoots()
	if err != nil {
		return nil, err
	}
	for _, id := range roots {
		r, err := s.ContainerRoot(id)
		if err != nil {
			return nil, err
		}
		stack, err := s.Stack(r.Parent)
		if err != nil {
			return nil, err
		}
		for _, l := range stack {
			used[l.ChainID] = true
		}
	}
	return used, nil
}

// removeLayer: the record is first renamed out of sight (Layers and Layer
// skip a name ending in -incomplete), then the files go, then the record.
// A removal stopped half way is finished by the next one.
func (s *Store) removeLayer(chainID, cacheID string) error {
	if err := checkCacheID(cacheID); err != nil {
		return err
	}
	record := s.layerdb(chainID)
	if err := os.Rename(record, record+"-incomplete"); err != nil {
		return err
	}
	if err := os.RemoveAll(s.driverDir(cacheID)); err != nil {
		return err
	}
	return os.RemoveAll(record + "-incomplete")
}

// finishRemovals completes the layer removals a killed process left: a
// record renamed -incomplete whose cache-id still names files. (An Add
// writes its record as -incomplete too, but under the shared lock, which
// the caller holds exclusive: none is in progress.)
func (s *Store) finishRemovals() error {
	names, err := readNames(s.layerdb(""))
	if err != nil {
		return err
	}
	for _, n := range names {
		if !strings.HasSuffix(n, "-incomplete") {
			continue
		}
		dir := filepath.Join(s.layerdb(""), n)
		if b, err := os.ReadFile(filepath.Join(dir, "cache-id")); err == nil {
			if id := strings.TrimSpace(string(b)); checkCacheID(id) == nil {
				if err := os.RemoveAll(s.driverDir(id)); err != nil {
					return err
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// checkCacheID: a cache ID names a directory of overlay2/, and nothing else.
func checkCacheID(id string) error {
	if id == "" || strings.ContainsAny(id, "/.") {
		return fmt.Errorf("bad cache-id %q in the store", id)
	}
	return nil
}
