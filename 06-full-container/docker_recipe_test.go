package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/testkit"
)

// recipeBlock is a block of docs/06-oci-runtime.md marked for this test:
// `<!-- docker-recipe -->` before a sh block (and the text block after it,
// if any: its expected output), or `<!-- docker-recipe: daemon.json -->`.
type recipeBlock struct {
	kind, code, want string
	line             int
}

var fenceRE = regexp.MustCompile("^( *)```")

// recipeBlocks reads the marked blocks of a chapter, in order.
func recipeBlocks(t *testing.T, path, marker string) []recipeBlock {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	// fenced reads the fenced block that starts at or after line i.
	fenced := func(i int) (string, string, int) {
		for ; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
		}
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			return "", "", i
		}
		lang := strings.TrimPrefix(strings.TrimSpace(lines[i]), "```")
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], m[1]))
		}
		return lang, strings.Join(body, "\n") + "\n", i + 1
	}
	var out []recipeBlock
	for i, l := range lines {
		kind, ok := strings.CutPrefix(strings.TrimSpace(l), "<!-- "+marker)
		if !ok {
			continue
		}
		kind = strings.Trim(strings.TrimSuffix(kind, "-->"), ": ")
		_, code, next := fenced(i + 1)
		blk := recipeBlock{kind: kind, code: code, line: i + 1}
		if lang, want, _ := fenced(next); lang == "text" {
			blk.want = want
		}
		out = append(out, blk)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no <!-- %s --> block", path, marker)
	}
	return out
}

// matches compares output with a chapter's text block, line by line:
// <n> stands for digits, <hex> for hex digits, <*> for anything.
func matches(want, got string) bool {
	w := strings.Split(strings.TrimRight(want, "\n"), "\n")
	g := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if len(w) != len(g) {
		return false
	}
	for i := range w {
		if !linePattern(w[i]).MatchString(g[i]) {
			return false
		}
	}
	return true
}

func linePattern(line string) *regexp.Regexp {
	p := regexp.QuoteMeta(line)
	for ph, re := range map[string]string{"<n>": "[0-9]+", "<hex>": "[0-9a-f]+", `<\*>`: ".*"} {
		p = strings.ReplaceAll(p, regexp.QuoteMeta(strings.ReplaceAll(ph, `\`, "")), re)
	}
	return regexp.MustCompile("^" + p + "$")
}

// The Docker section of the OCI chapter is a recipe: its daemon.json
// registers the runtime with a private dockerd, and its commands run
// verbatim, their output compared with the chapter's. The runtime is
// registered through a wrapper that logs its argv, and the chapter's
// account of what the shim calls is checked against that log.
func TestDockerRecipeFromTheChapter(t *testing.T) {
	setup(t)
	chapter := filepath.Join(testkit.ModuleRoot(t), "docs", "06-oci-runtime.md")
	blocks := recipeBlocks(t, chapter, "docker-recipe")
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	parent := fmt.Sprintf("/wsdk-recipe-%d", os.Getpid())
	t.Cleanup(func() { removeEmptyParent(t, h, parent) })

	work := t.TempDir()
	argvLog := filepath.Join(work, "argv.log")
	wrapper := filepath.Join(work, "workshop-runtime-logged")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", argvLog, testkit.Stage(t, "06-full-container"))), 0o755)
	var config map[string]any
	if blocks[0].kind != "daemon.json" || json.Unmarshal([]byte(blocks[0].code), &config) != nil {
		t.Fatalf("the chapter's first recipe block (line %d) must be the daemon.json:\n%s", blocks[0].line, blocks[0].code)
	}
	config["runtimes"].(map[string]any)["workshop"].(map[string]any)["path"] = wrapper
	d := startPrivateDockerd(t, dockerdOptions{network: true, config: config, cgroupParent: parent})
	busyboxImage(t, d, "busybox")

	// Debian's docker client (another may come first on PATH).
	bin := filepath.Join(work, "bin")
	os.MkdirAll(bin, 0o755)
	os.Symlink(dockerClient, filepath.Join(bin, "docker"))
	for _, blk := range blocks[1:] {
		cmd := exec.Command("sh", "-c", blk.code)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "PATH="+bin+":"+os.Getenv("PATH"),
			"DOCKER_CONFIG="+filepath.Join(d.dir, "client"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("docs/06-oci-runtime.md:%d: %v\n%s\n%s", blk.line, err, blk.code, out)
			continue
		}
		if blk.want != "" && !matches(blk.want, string(out)) {
			t.Errorf("docs/06-oci-runtime.md:%d: the output differs from the chapter's.\nthe chapter:\n%s\nDocker on the workshop runtime:\n%s", blk.line, blk.want, out)
		}
	}
	b, _ := os.ReadFile(argvLog)
	got := normalizeArgv(string(b), filepath.Join(d.dir, "exec"))
	want := recipeBlocks(t, chapter, "docker-argv")[0].code
	if missing := notInOrder(want, got); missing != "" {
		t.Errorf("docs/06-oci-runtime.md's account of what the shim runs has %q, which is not in what it ran (in that order):\n%s", missing, got)
	}
}

var hex64 = regexp.MustCompile(`[0-9a-f]{64}`)

// normalizeArgv writes the logged argv lines as the chapter does: the
// exec-root as Docker's default, the paths every line repeats as $R, $L,
// $B, the container's ID as ID (the first ID on a line: in --log's path).
func normalizeArgv(log, execRoot string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		id := hex64.FindString(line) // the first: in --log's path
		line = strings.ReplaceAll(line, execRoot, "/var/run/docker")
		task := "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/" + id
		line = strings.ReplaceAll(line, task+"/log.json", "$L")
		line = strings.ReplaceAll(line, task, "$B")
		line = strings.ReplaceAll(line, "/var/run/docker/runtime-runc/moby", "$R")
		line = strings.ReplaceAll(line, id, "ID")
		line = hex64.ReplaceAllString(line, "EXECID")
		line = regexp.MustCompile(`/tmp/runc-process[0-9]+`).ReplaceAllString(line, "/tmp/runc-processN")
		out = append(out, "workshop-runtime "+line)
	}
	return strings.Join(out, "\n") + "\n"
}

// notInOrder returns the first line of want (after its R=, L=, B= lines)
// that is not found in got after the lines before it.
func notInOrder(want, got string) string {
	g := strings.Split(got, "\n")
	at := 0
	for _, w := range strings.Split(strings.TrimSpace(want), "\n") {
		if strings.Contains(w, "=/") {
			continue
		}
		for at < len(g) && g[at] != w {
			at++
		}
		if at == len(g) {
			return w
		}
		at++
	}
	return ""
}
