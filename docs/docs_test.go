// Package docs holds the workshop's chapters and the tests that keep them
// true: every captured output block is re-run against the real program, and
// every relative link must lead somewhere.
//
// The convention (see docs/README.md, "Captured output"): an HTML comment
// line `<!-- output: NN-name ARGS... -->` names a stage directory and its
// arguments; the very next line opens a ```text block holding what the
// program prints (stdout then stderr) when run as root with NO_COLOR=1 and
// stdin closed. In the block, `<n>` stands for a number, `<hex>` for hex
// digits, `<*>` for the rest of a line, and a line holding only `<...>` for
// any number of lines (none included). `<!-- output: as-user NN-name ... -->`
// runs it as an ordinary user instead (nobody, uid 65534, with a home and a
// runtime directory of its own): stage 06's rootless run.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// outputBlock is one documented run and what it must print.
type outputBlock struct {
	file      string   // chapter, relative to the module root: docs/01-pid-namespace.md
	line      int      // line of the <!-- output: --> comment (1-based)
	asUser    bool     // run as nobody (`as-user` before the stage)
	args      []string // stage directory, then its arguments
	want      []string // the block's lines
	firstLine int      // chapter line of want[0]
}

func (b outputBlock) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var (
	outputStartRE   = regexp.MustCompile(`^\s*<!--\s*output\b`)
	outputCommentRE = regexp.MustCompile(`^<!-- output: (\S.*?) -->$`)
	stageDirRE      = regexp.MustCompile(`^\d\d-[a-z0-9-]+$`)
	fenceRE         = regexp.MustCompile("^ {0,3}(```+|~~~+)")
)

// parseChapter finds the output blocks of one chapter. Problems (a comment
// not followed by a text block, an unclosed block, a malformed comment) are
// returned as errors naming the line, never skipped.
func parseChapter(file, text string) ([]outputBlock, []error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var blocks []outputBlock
	var errs []error
	fence := "" // the fence that opened the code block we are in, if any
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t")
		if fence != "" {
			if strings.HasPrefix(strings.TrimLeft(l, " "), fence) && strings.Trim(strings.TrimLeft(l, " "), fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			fence = m[1]
			continue
		}
		if !outputStartRE.MatchString(l) {
			continue
		}
		at := fmt.Sprintf("%s:%d", file, i+1)
		m := outputCommentRE.FindStringSubmatch(l)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: malformed output comment %q: write `<!-- output: NN-name ARGS... -->` on a line of its own", at, l))
			continue
		}
		args, err := splitArgs(m[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", at, err))
			continue
		}
		asUser := args[0] == "as-user" && len(args) > 1
		if asUser {
			args = args[1:]
		}
		if !stageDirRE.MatchString(args[0]) {
			errs = append(errs, fmt.Errorf("%s: %q is not a stage directory (NN-name)", at, args[0]))
			continue
		}
		if i+1 >= len(lines) || strings.TrimRight(lines[i+1], " \t") != "```text" {
			next := "the end of the file"
			if i+1 < len(lines) {
				next = fmt.Sprintf("%q", lines[i+1])
			}
			errs = append(errs, fmt.Errorf("%s: `<!-- output:` comment not followed by a ```text block on the next line (found %s)", at, next))
			continue
		}
		b := outputBlock{file: file, line: i + 1, args: args, firstLine: i + 3, asUser: asUser}
		closed := false
		for j := i + 2; j < len(lines); j++ {
			if strings.TrimRight(lines[j], " \t") == "```" {
				closed, i = true, j
				break
			}
			b.want = append(b.want, lines[j])
		}
		if !closed {
			errs = append(errs, fmt.Errorf("%s: the ```text block after the output comment is never closed", at))
			break
		}
		blocks = append(blocks, b)
	}
	return blocks, errs
}

// splitArgs splits a command line the way a shell would for simple cases:
// spaces separate words, '...' and "..." quote (no escapes inside '...').
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed %c quote in %q", c, s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("empty output comment: name a stage directory")
	}
	return args, nil
}

// --- the matcher ---------------------------------------------------------

// A block line is either a gap (`<...>`: any number of lines) or a pattern.
type blockLine struct {
	gap bool
	re  *regexp.Regexp
	src string
}

var placeholderRE = regexp.MustCompile(`<n>|<hex>|<\*>`)

var placeholders = map[string]string{
	"<n>":   `-?[0-9]+(?:\.[0-9]+)?`,
	"<hex>": `[0-9a-fA-F]+`,
	"<*>":   `.*`,
}

func compileLine(src string) blockLine {
	src = strings.TrimRight(src, " \t\r")
	if strings.TrimSpace(src) == "<...>" {
		return blockLine{gap: true, src: src}
	}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	for _, loc := range placeholderRE.FindAllStringIndex(src, -1) {
		re.WriteString(regexp.QuoteMeta(src[last:loc[0]]))
		re.WriteString(placeholders[src[loc[0]:loc[1]]])
		last = loc[1]
	}
	re.WriteString(regexp.QuoteMeta(src[last:]))
	re.WriteString("$")
	return blockLine{re: regexp.MustCompile(re.String()), src: src}
}

// normalise makes the comparison robust to what an editor or a terminal
// changes without meaning to: trailing spaces, carriage returns, and blank
// lines at the end (a final newline included).
func normalise(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(l, " \t\r")
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// mismatch says where a block and an output part ways.
type mismatch struct {
	wantIdx int // index into the block's lines; len(block) if the output goes on
	gotIdx  int // index into the output's lines; len(output) if it ended early
}

// matchLines reports whether the output matches the block, and otherwise
// the furthest point the match reached: the most useful place to look.
func matchLines(block, output []string) (bool, mismatch) {
	want := make([]blockLine, 0, len(block))
	for _, l := range normalise(block) {
		want = append(want, compileLine(l))
	}
	got := normalise(output)
	// memo[i][j]: 0 unknown, 1 matches, 2 does not (want[i:] against got[j:]).
	memo := make([][]byte, len(want)+1)
	for i := range memo {
		memo[i] = make([]byte, len(got)+1)
	}
	best := mismatch{-1, -1}
	note := func(i, j int) {
		if i > best.wantIdx || (i == best.wantIdx && j > best.gotIdx) {
			best = mismatch{i, j}
		}
	}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		if memo[i][j] != 0 {
			return memo[i][j] == 1
		}
		ok := false
		switch {
		case i == len(want):
			ok = j == len(got)
		case want[i].gap:
			ok = m(i+1, j) || (j < len(got) && m(i, j+1))
		default:
			ok = j < len(got) && want[i].re.MatchString(got[j]) && m(i+1, j+1)
		}
		if !ok && (i == len(want) || !want[i].gap) {
			note(i, j)
		}
		if ok {
			memo[i][j] = 1
		} else {
			memo[i][j] = 2
		}
		return ok
	}
	if m(0, 0) {
		return true, mismatch{}
	}
	return false, best
}

// explain turns a mismatch into a message a chapter's author can act on:
// which chapter line, what it wants, what the program printed instead, and
// the whole output to paste back (re-adding placeholders).
func explain(b outputBlock, output string, mm mismatch) string {
	want := normalise(b.want)
	got := normalise(strings.Split(output, "\n"))
	var s strings.Builder
	fmt.Fprintf(&s, "%s: `%s` no longer prints what the chapter shows.\n", b.where(), strings.Join(b.args, " "))
	switch {
	case mm.wantIdx >= len(want):
		fmt.Fprintf(&s, "  the block ends (line %d) but the program printed more, from output line %d:\n    %s\n",
			b.firstLine+len(want)-1, mm.gotIdx+1, got[mm.gotIdx])
	case mm.gotIdx >= len(got):
		fmt.Fprintf(&s, "  %s:%d wants:\n    %s\n  but the output ended after %d lines\n", b.file, b.firstLine+mm.wantIdx, want[mm.wantIdx], len(got))
	default:
		fmt.Fprintf(&s, "  %s:%d wants:\n    %s\n  output line %d is:\n    %s\n", b.file, b.firstLine+mm.wantIdx, want[mm.wantIdx], mm.gotIdx+1, got[mm.gotIdx])
	}
	s.WriteString("--- the chapter's block\n")
	for i, l := range want {
		mark := "  "
		if i == mm.wantIdx {
			mark = "> "
		}
		fmt.Fprintf(&s, "%s%4d | %s\n", mark, b.firstLine+i, l)
	}
	s.WriteString("+++ what the program printed (root, NO_COLOR=1, stdin closed; stdout then stderr)\n")
	for i, l := range got {
		mark := "  "
		if i == mm.gotIdx {
			mark = "> "
		}
		fmt.Fprintf(&s, "%s%4d | %s\n", mark, i+1, l)
	}
	return s.String()
}

// --- the tests over every chapter ----------------------------------------

// chapters returns the docs' Markdown files, relative to the module root.
func chapters(t *testing.T) (root string, files []string) {
	t.Helper()
	root = testkit.ModuleRoot(t)
	matches, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	sort.Strings(files)
	return root, files
}

func allBlocks(t *testing.T) (string, []outputBlock) {
	t.Helper()
	root, files := chapters(t)
	var all []outputBlock
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		blocks, errs := parseChapter(f, string(b))
		for _, e := range errs {
			t.Error(e)
		}
		all = append(all, blocks...)
	}
	return root, all
}

func TestEveryOutputCommentIsFollowedByATextBlock(t *testing.T) {
	root, blocks := allBlocks(t)
	for _, b := range blocks {
		if fi, err := os.Stat(filepath.Join(root, b.args[0], "main.go")); err != nil || fi.IsDir() {
			t.Errorf("%s: no stage %s (there is no %s/main.go)", b.where(), b.args[0], b.args[0])
		}
		if len(normalise(b.want)) == 0 {
			t.Errorf("%s: the output block is empty", b.where())
		}
	}
}

func TestChapterOutputBlocksMatchTheirPrograms(t *testing.T) {
	testkit.RequireRoot(t)
	root, blocks := allBlocks(t)
	if len(blocks) == 0 {
		t.Skip("no chapter has an output block yet")
	}
	// Run from the module root, as a learner does (`sudo go run ./NN-name`).
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(wd) })

	for _, b := range blocks {
		b := b
		t.Run(b.where(), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(root, b.args[0], "main.go")); err != nil {
				t.Fatalf("%s: no stage %s to run", b.where(), b.args[0])
			}
			testkit.CheckHost(t)
			bin := testkit.Stage(t, b.args[0])
			if b.args[0] == "06-full-container" {
				// Stage 06's containers are on a bridge that stays until
				// `network prune` (as Docker's docker0 stays): remove it
				// after each block, before the host check, as a learner
				// would at the end of the chapter.
				t.Cleanup(func() {
					if r := testkit.Run(t, testkit.RunOpts{}, bin, "network", "prune"); r.Code != 0 {
						t.Errorf("network prune after the block:\n%s", r)
					}
				})
			}
			opts := testkit.RunOpts{Timeout: 2 * time.Minute}
			if b.asUser {
				opts.AsUser, opts.Env = true, testkit.NobodyDirs(t)
			}
			res := testkit.Run(t, opts, bin, b.args[1:]...)
			output := res.Stdout + res.Stderr
			if ok, mm := matchLines(b.want, strings.Split(output, "\n")); !ok {
				t.Errorf("%s(exit status %d)", explain(b, output, mm), res.Code)
			}
		})
	}
}
