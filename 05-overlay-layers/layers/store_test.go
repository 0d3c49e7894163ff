package layers

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, files)
	return tarOf(t, dir)
}

func TestStoreKeysLayersByChainIDLikeDocker(t *testing.T) {
	testkit.RequireRoot(t)
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t1 := layerTar(t, map[string]string{"etc/os-release": "workshop\n"})
	t2 := layerTar(t, map[string]string{"bin/app": "app v1\n"})
	l1, err := s.Add("", bytes.NewReader(t1))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.Add(l1.ChainID, bytes.NewReader(t2))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := DiffID(bytes.NewReader(t1))
	d2, _ := DiffID(bytes.NewReader(t2))
	chain, _ := ChainIDs([]string{d1, d2})
	if l1.DiffID != d1 || l1.ChainID != d1 || l2.DiffID != d2 || l2.ChainID != chain[1] {
		t.Fatalf("layers %+v %+v, want diffIDs %s %s, chain IDs %v", l1, l2, d1, d2, chain)
	}
	// The files Docker keeps per layer, by chain ID.
	meta := filepath.Join(s.Root, "image/overlay2/layerdb/sha256", strings.TrimPrefix(l2.ChainID, "sha256:"))
	for name, want := range map[string]string{"diff": d2, "parent": l1.ChainID, "cache-id": l2.CacheID, "size": "7"} {
		if got := read(t, filepath.Join(meta, name)); got != want {
			t.Errorf("layerdb %s = %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Root, "image/overlay2/layerdb/sha256", strings.TrimPrefix(l1.ChainID, "sha256:"), "parent")); !os.IsNotExist(err) {
		t.Errorf("the bottom layer has a parent file")
	}
	if got := read(t, filepath.Join(s.Root, "overlay2", l2.CacheID, "diff/bin/app")); got != "app v1\n" {
		t.Errorf("overlay2/<cache-id>/diff/bin/app = %q", got)
	}
	// The same tar on the same parent is the same layer: stored once.
	again, err := s.Add(l1.ChainID, bytes.NewReader(t2))
	if err != nil || again.CacheID != l2.CacheID {
		t.Errorf("re-adding a layer made a new copy (%v, %v)", again, err)
	}
	// On another parent it is another layer, with the same diffID.
	other, err := s.Add("", bytes.NewReader(t2))
	if err != nil || other.ChainID != d2 || other.CacheID == l2.CacheID {
		t.Errorf("the same tar at the bottom: %+v, %v", other, err)
	}
	stack, err := s.Stack(l2.ChainID)
	if err != nil || len(stack) != 2 || stack[0].ChainID != l1.ChainID {
		t.Errorf("Stack = %+v, %v; want l1 then l2", stack, err)
	}
	if all, _ := s.Layers(); len(all) != 3 {
		t.Errorf("Layers lists %d layers, want 3", len(all))
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root, "overlay2"))
	if len(entries) != 3 {
		t.Errorf("overlay2/ holds %d directories, want 3 (no leftovers)", len(entries))
	}

	img, err := s.PutImage("app", []string{d1, d2}, ImageConfig{Cmd: []string{"/bin/app"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Image("app:latest"); err != nil || got.ID != img.ID || got.TopChainID() != l2.ChainID || got.Config.Cmd[0] != "/bin/app" {
		t.Errorf("Image(app:latest) = %+v, %v", got, err)
	}
	config, _ := os.ReadFile(filepath.Join(s.Root, "image/overlay2/imagedb/content/sha256", strings.TrimPrefix(img.ID, "sha256:")))
	if Digest(config) != img.ID || !strings.Contains(string(config), `"diff_ids":["`+d1+`","`+d2+`"]`) {
		t.Errorf("image config %s does not hash to its ID %s or lacks rootfs.diff_ids", config, img.ID)
	}
	if _, err := s.PutImage("broken", []string{d2, d1}, ImageConfig{}); err == nil {
		t.Errorf("an image whose layer chain is not in the store was recorded")
	}
	if _, err := s.Add("", bytes.NewReader(buildTar(t, entry{name: "../x", kind: tar.TypeReg}))); err == nil {
		t.Errorf("a malicious layer was added")
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root, "overlay2")); len(entries) != 3 {
		t.Errorf("a rejected layer left %d directories in overlay2/", len(entries)-3)
	}
}

func TestInitLayerHoldsHostsHostnameAndResolvConf(t *testing.T) {
	dir := t.TempDir()
	if err := WriteInitLayer(dir, "container1", []string{"10.0.0.53"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"etc/hostname":    "container1\n",
		"etc/resolv.conf": "nameserver 10.0.0.53\n",
	} {
		if got := read(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	hosts := read(t, filepath.Join(dir, "etc/hosts"))
	if !strings.Contains(hosts, "127.0.0.1\tlocalhost\n") || !strings.Contains(hosts, "\tcontainer1\n") {
		t.Errorf("etc/hosts lacks localhost or the hostname:\n%s", hosts)
	}
	for _, d := range []string{"proc", "sys", "dev/pts", "dev/shm"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("no mount point %s: %v", d, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dir, "etc/mtab")); l != "/proc/mounts" {
		t.Errorf("etc/mtab -> %q", l)
	}
	if err := WriteInitLayer(dir, "bad name", nil); err == nil {
		t.Error("a hostname with a space was accepted")
	}
	for _, ns := range HostNameservers() {
		if strings.HasPrefix(ns, "127.") {
			t.Errorf("HostNameservers offers the loopback %s, unreachable from a container", ns)
		}
	}
}

// A container's root: the image's layers, its init layer, its rw layer.
// Commit keeps only the rw layer: the init layer's files are not in it.
func TestContainerRootCommitKeepsOnlyTheReadWriteLayer(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.ImportTar(bytes.NewReader(layerTar(t, map[string]string{"etc/os-release": "base\n", "tmp/junk": "j"})), ImageConfig{}, ImportOptions{Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.CreateRoot("c1", img, "c1host", []string{"10.0.0.53"})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ContainerRoots(); err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("ContainerRoots = %v, %v; want [c1]", ids, err)
	}
	if _, err := s.CreateRoot("c1", img, "again", nil); err == nil {
		t.Errorf("a second root for c1 was created")
	}
	if err := root.Mount(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Unmount(nil) })
	if got := read(t, filepath.Join(root.Merged, "etc/hostname")); got != "c1host\n" {
		t.Errorf("merged etc/hostname = %q", got)
	}
	write(t, root.Merged, map[string]string{"app/data": "made in c1\n"})
	os.Remove(filepath.Join(root.Merged, "tmp/junk"))
	if err := root.Unmount(nil); err != nil {
		t.Fatal(err)
	}
	newImg, layer, err := s.Commit("c1", "base-plus", ImageConfig{Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(newImg.DiffIDs) != 2 || newImg.DiffIDs[0] != img.DiffIDs[0] || newImg.DiffIDs[1] != layer.DiffID {
		t.Errorf("committed image diffIDs %v, want %v + %s", newImg.DiffIDs, img.DiffIDs, layer.DiffID)
	}
	if layer.Parent != img.TopChainID() {
		t.Errorf("committed layer's parent %s, want the image's top %s", layer.Parent, img.TopChainID())
	}
	got := tree(t, layer.Dir)
	if !strings.Contains(got, "app/data") || !strings.Contains(got, "tmp/junk 0 0:0 chardev 0/0") {
		t.Errorf("committed layer lacks the new file or the whiteout:\n%s", got)
	}
	if strings.Contains(got, "hostname") || strings.Contains(got, "resolv.conf") {
		t.Errorf("the init layer's files leaked into the commit:\n%s", got)
	}
	if err := s.RemoveRoot("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ContainerRoot("c1"); err == nil {
		t.Error("the root is still recorded after RemoveRoot")
	}
	images, _ := s.Images()
	if len(images) != 2 || images[0].ID != newImg.ID && images[1].ID != newImg.ID {
		t.Errorf("Images = %+v", images)
	}
}

// A `docker save` archive in the classic layout: manifest.json, the image
// config, and <id>/layer.tar per layer.
func TestImportSaveChecksDiffIDsAgainstTheConfig(t *testing.T) {
	testkit.RequireRoot(t)
	t1 := layerTar(t, map[string]string{"bin/sh": "shell\n"})
	t2 := layerTar(t, map[string]string{"etc/motd": "hi\n"})
	d1, _ := DiffID(bytes.NewReader(t1))
	d2, _ := DiffID(bytes.NewReader(t2))
	archive := func(diffIDs []string) []byte {
		config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
			"config": map[string]any{"Cmd": []string{"/bin/sh"}}, "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
		manifest, _ := json.Marshal([]map[string]any{{"Config": "cfg.json", "RepoTags": []string{"saved:1.0"}, "Layers": []string{"l1/layer.tar", "l2/layer.tar"}}})
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, body := range map[string][]byte{"manifest.json": manifest, "cfg.json": config, "l1/layer.tar": t1, "l2/layer.tar": t2} {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
		tw.Close()
		return buf.Bytes()
	}
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := s.ImportSave(bytes.NewReader(archive([]string{d1, d2})), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Names[0] != "saved:1.0" || len(imgs[0].DiffIDs) != 2 || imgs[0].Config.Cmd[0] != "/bin/sh" {
		t.Errorf("imported %+v", imgs)
	}
	if _, err := s.ImportSave(bytes.NewReader(archive([]string{d2, d1})), ImportOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("an archive whose config names other diffIDs: %v", err)
	}
	if entries, _ := os.ReadDir(s.Root); len(entries) != 2 {
		t.Errorf("the store root holds %d entries after imports, want image/ and overlay2/", len(entries))
	}
}

// What a killed import or commit left in the store's root (an unpacked
// archive, a half-unpacked layer) is removed by the next OpenStore; what a
// live one is working on is not.
func TestOpenStoreCollectsOnlyWhatDeadWritersLeft(t *testing.T) {
	testkit.RequireRoot(t)
	root := t.TempDir()
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	staged := []string{filepath.Join(root, "import-123", "l1"), filepath.Join(root, "incomplete-abc", "diff")}
	mkdirs(t, staged...)
	done, err := s.working() // a writer still at work
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range staged {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("a live writer's %s was removed", d)
		}
	}
	done() // ...and now it is gone
	if _, err := OpenStore(root); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 2 {
		t.Errorf("the store root holds %d entries, want image/ and overlay2/", len(entries))
	}
}

// Removing an image frees only the layers no other image or container
// root stands on; a removal killed half way is finished by the next.
func TestRemoveImageFreesOnlyUnsharedLayers(t *testing.T) {
	testkit.RequireRoot(t)
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := s.Add("", bytes.NewReader(layerTar(t, map[string]string{"etc/os-release": "base\n"})))
	app, _ := s.Add(base.ChainID, bytes.NewReader(layerTar(t, map[string]string{"bin/app": "v1\n"})))
	tool, _ := s.Add(base.ChainID, bytes.NewReader(layerTar(t, map[string]string{"bin/tool": "v1\n"})))
	appImg, err := s.PutImage("app", []string{base.DiffID, app.DiffID}, ImageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	toolImg, err := s.PutImage("tool", []string{base.DiffID, tool.DiffID}, ImageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoot("ctr", toolImg, "h", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveImage(appImg.ID); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemoveUnusedLayers()
	if err != nil || len(removed) != 1 || removed[0].ChainID != app.ChainID {
		t.Fatalf("removing app's image: want only its own layer removed, got %v (%v)", removed, err)
	}
	if _, err := os.Stat(app.Dir); !os.IsNotExist(err) {
		t.Fatalf("the removed layer's files are still there (%v)", err)
	}
	// tool's image goes, but a container root still stands on its layers.
	if err := s.RemoveImage(toolImg.ID); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveUnusedLayers(); err != nil || len(removed) != 0 {
		t.Fatalf("a container's layers were removed: %v (%v)", removed, err)
	}
	if err := s.RemoveRoot("ctr"); err != nil {
		t.Fatal(err)
	}
	// A removal killed after hiding its record: the next one finishes it.
	if err := os.Rename(s.layerdb(tool.ChainID), s.layerdb(tool.ChainID)+"-incomplete"); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveUnusedLayers(); err != nil || len(removed) != 1 || removed[0].ChainID != base.ChainID {
		t.Fatalf("want base removed after the container went, got %v (%v)", removed, err)
	}
	for _, l := range []Layer{base, tool} {
		if _, err := os.Stat(filepath.Dir(l.Dir)); !os.IsNotExist(err) {
			t.Errorf("layer %s's files are still there (%v)", l.ChainID, err)
		}
	}
	if left, _ := readNames(s.layerdb("")); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}
}
