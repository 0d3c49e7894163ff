package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/container-internals/workshop/internal/testkit"
)

var (
	inlineLinkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLinkRE    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	codeSpanRE   = regexp.MustCompile("`+[^`]*`+")
	headingRE    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	schemeRE     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	linkTextRE   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

type link struct {
	line   int
	target string
}

// proseLines yields the lines of a Markdown file outside fenced code blocks,
// with inline code removed: a link written as code is an example, not a link.
func proseLines(text string) map[int]string {
	out := map[int]string{}
	fence := ""
	for i, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(strings.TrimRight(trimmed, " \t"), fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			fence = m[1]
			continue
		}
		out[i+1] = codeSpanRE.ReplaceAllString(l, "")
	}
	return out
}

func linksIn(text string) []link {
	var out []link
	prose := proseLines(text)
	nums := make([]int, 0, len(prose))
	for n := range prose {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		l := prose[n]
		for _, m := range inlineLinkRE.FindAllStringSubmatch(l, -1) {
			out = append(out, link{n, m[1]})
		}
		if m := refLinkRE.FindStringSubmatch(l); m != nil {
			out = append(out, link{n, m[1]})
		}
	}
	return out
}

// anchors lists the heading anchors GitHub makes for a Markdown file:
// lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	all := strings.Split(text, "\n")
	prose := proseLines(text)
	for i, orig := range all {
		if _, ok := prose[i+1]; !ok {
			continue // inside a code block
		}
		m := headingRE.FindStringSubmatch(orig)
		if m == nil {
			continue
		}
		slug := slugify(linkTextRE.ReplaceAllString(m[1], "$1"))
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdownFiles: the docs and the top-level README, relative to the root.
func markdownFiles(t *testing.T) (string, []string) {
	root, files := chapters(t)
	if _, err := os.Stat(filepath.Join(root, "README.md")); err == nil {
		files = append(files, "README.md")
	}
	return root, files
}

func TestEveryRelativeLinkLeadsSomewhere(t *testing.T) {
	root, files := markdownFiles(t)
	texts := map[string]string{}
	read := func(rel string) (string, bool) {
		if s, ok := texts[rel]; ok {
			return s, true
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return "", false
		}
		texts[rel] = string(b)
		return string(b), true
	}
	for _, f := range files {
		text, _ := read(f)
		for _, l := range linksIn(text) {
			if schemeRE.MatchString(l.target) {
				continue // http:, https:, mailto: are not checked (no network)
			}
			path, frag, _ := strings.Cut(l.target, "#")
			target := f
			if path != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(f), path))
				if strings.HasPrefix(target, "..") {
					t.Errorf("%s:%d: link %q leaves the repository", f, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, target)); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", f, l.line, l.target, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(target, ".md") {
				other, _ := read(target)
				if !anchors(other)[frag] {
					t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", f, l.line, l.target, target, frag)
				}
			}
		}
	}
}

var chapterRE = regexp.MustCompile(`^\d\d-[a-z0-9-]+\.md$`)

func TestLearningPathLinksEveryChapter(t *testing.T) {
	root, files := chapters(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "README.md"))
	if err != nil {
		t.Fatalf("docs/README.md, the learning path, is missing: %v", err)
	}
	linked := map[string]bool{}
	for _, l := range linksIn(string(b)) {
		path, _, _ := strings.Cut(l.target, "#")
		linked[filepath.Clean(filepath.Join("docs", path))] = true
	}
	for _, f := range files {
		if chapterRE.MatchString(filepath.Base(f)) && !linked[f] {
			t.Errorf("docs/README.md does not link to the chapter %s", f)
		}
	}
}

func TestEveryStageHasAChapter(t *testing.T) {
	root := testkit.ModuleRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dirs {
		stage := filepath.Base(filepath.Dir(m))
		if _, err := os.Stat(filepath.Join(root, "docs", stage+".md")); err != nil {
			t.Errorf("stage %s has no chapter docs/%s.md", stage, stage)
		}
	}
}

func TestSlugsFollowGitHub(t *testing.T) {
	got := anchors("# The idea\n## What you see\n## `pivot_root`: why not chroot?\n## What you see\n```\n# not a heading\n```\n## 障眼法 (sleight of hand)\n")
	for _, want := range []string{"the-idea", "what-you-see", "what-you-see-1", "pivot_root-why-not-chroot", "障眼法-sleight-of-hand"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a # line inside a code block is not a heading")
	}
}
