package docs

import (
	"strings"
	"testing"
)

func lines(s string) []string { return strings.Split(s, "\n") }

func TestMatcherPlaceholders(t *testing.T) {
	cases := []struct {
		name, block, output string
		ok                  bool
	}{
		{"exact", "a\nb", "a\nb", true},
		{"number", "PID <n>", "PID 4242", true},
		{"negative decimal", "quota <n> usage <n>%", "quota -1 usage 20.3%", true},
		{"number is not a word", "PID <n>", "PID abc", false},
		{"number must be all of it", "PID <n>!", "PID 12x!", false},
		{"hex", "sha256:<hex>", "sha256:9f86d081884c7d659a2feaa0c55ad015", true},
		{"hex is not anything", "sha256:<hex>", "sha256:xyz", false},
		{"rest of line", "started at <*>", "started at 10:22:07 today", true},
		{"rest of line may be empty", "x<*>", "x", true},
		{"regexp characters are literal", "a.b (c) [d] $ ^ * +", "a.b (c) [d] $ ^ * +", true},
		{"regexp characters really are literal", "a.b", "axb", false},
		{"gap of zero lines", "a\n<...>\nb", "a\nb", true},
		{"gap of many lines", "a\n<...>\nz", "a\n1\n2\n3\nz", true},
		{"indented gap", "a\n  <...>\nz", "a\nq\nz", true},
		{"gap at the end", "a\n<...>", "a\nb\nc", true},
		{"gap at the start", "<...>\nz", "x\ny\nz", true},
		{"gap needs what follows", "a\n<...>\nz", "a\nb", false},
		{"two gaps", "a\n<...>\nm\n<...>\nz", "a\n1\nm\n2\n3\nz", true},
		{"trailing spaces do not count", "a  \nb", "a\nb   ", true},
		{"final newline does not count", "a\nb\n", "a\nb", true},
		{"carriage returns do not count", "a\nb", "a\r\nb\r\n", true},
		{"leading spaces count", "  a", "a", false},
		{"a missing line counts", "a\nb\nc", "a\nc", false},
		{"an extra line counts", "a\nc", "a\nb\nc", false},
		{"more output at the end counts", "a", "a\nb", false},
		{"blank lines inside count", "a\n\nb", "a\nb", false},
		{"empty output against a block", "a", "", false},
	}
	for _, c := range cases {
		ok, _ := matchLines(lines(c.block), lines(c.output))
		if ok != c.ok {
			t.Errorf("%s: block %q against output %q: match=%v, want %v", c.name, c.block, c.output, ok, c.ok)
		}
	}
}

func TestMismatchNamesTheChapterLineAndTheOutputLine(t *testing.T) {
	b := outputBlock{file: "docs/03-cgroups-cpu.md", line: 40, firstLine: 42,
		args: []string{"03-cgroups-cpu"},
		want: lines("host | Step 1: make a cgroup\nhost |  cpu.max: 20000 100000\nhost |  check passed: <*>")}
	out := "host | Step 1: make a cgroup\nhost |  cpu.max: max 100000\nhost |  check passed: held"
	ok, mm := matchLines(b.want, lines(out))
	if ok {
		t.Fatal("a changed value matched")
	}
	if mm.wantIdx != 1 || mm.gotIdx != 1 {
		t.Errorf("mismatch at block line %d, output line %d; want 1, 1", mm.wantIdx, mm.gotIdx)
	}
	msg := explain(b, out, mm)
	for _, s := range []string{
		"docs/03-cgroups-cpu.md:40: `03-cgroups-cpu` no longer prints",
		"docs/03-cgroups-cpu.md:43 wants:\n    host |  cpu.max: 20000 100000",
		"output line 2 is:\n    host |  cpu.max: max 100000",
		">   43 | host |  cpu.max: 20000 100000",
		">    2 | host |  cpu.max: max 100000",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("the explanation lacks %q:\n%s", s, msg)
		}
	}
}

func TestMismatchWhenOutputEndsEarlyOrGoesOn(t *testing.T) {
	b := outputBlock{file: "docs/x.md", line: 1, firstLine: 3, args: []string{"01-x"}, want: lines("a\nb")}
	ok, mm := matchLines(b.want, lines("a"))
	if ok || !strings.Contains(explain(b, "a", mm), "the output ended after 1 lines") {
		t.Errorf("short output: %v %+v\n%s", ok, mm, explain(b, "a", mm))
	}
	ok, mm = matchLines(b.want, lines("a\nb\nc"))
	if ok || !strings.Contains(explain(b, "a\nb\nc", mm), "printed more, from output line 3:\n    c") {
		t.Errorf("long output: %v %+v\n%s", ok, mm, explain(b, "a\nb\nc", mm))
	}
}

func TestParseChapterFindsBlocksAndTheirArguments(t *testing.T) {
	text := strings.Join([]string{
		"# Stage",
		"",
		"<!-- output: 01-pid-namespace --nested 3 -q -- sh -c 'echo inner PID: $$' -->",
		"```text",
		"inner PID: 1",
		"```",
		"",
		"```md",
		"<!-- output: 99-inside-a-code-block -->",
		"```",
		"<!-- output: 02-mount-namespace -->   ",
		"```text  ",
		"host | Step 1",
		"<...>",
		"```",
	}, "\n")
	blocks, errs := parseChapter("docs/x.md", text)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(blocks) != 2 {
		t.Fatalf("found %d blocks, want 2 (the one inside a code block is an example)", len(blocks))
	}
	got := strings.Join(blocks[0].args, "|")
	if want := "01-pid-namespace|--nested|3|-q|--|sh|-c|echo inner PID: $$"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if blocks[0].line != 3 || blocks[0].firstLine != 5 || strings.Join(blocks[0].want, "\n") != "inner PID: 1" {
		t.Errorf("first block: %+v", blocks[0])
	}
	if blocks[1].args[0] != "02-mount-namespace" || len(blocks[1].want) != 2 {
		t.Errorf("second block: %+v", blocks[1])
	}
}

func TestParseChapterRejectsACommentWithoutATextBlock(t *testing.T) {
	for name, text := range map[string]string{
		"prose next":         "<!-- output: 01-pid-namespace -->\nSome prose.\n",
		"blank line between": "<!-- output: 01-pid-namespace -->\n\n```text\nx\n```\n",
		"other language":     "<!-- output: 01-pid-namespace -->\n```sh\nx\n```\n",
		"end of file":        "<!-- output: 01-pid-namespace -->",
	} {
		_, errs := parseChapter("docs/x.md", text)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "docs/x.md:1: `<!-- output:` comment not followed by a ```text block") {
			t.Errorf("%s: errors %v", name, errs)
		}
	}
	for name, text := range map[string]string{
		"unclosed block":  "<!-- output: 01-pid-namespace -->\n```text\nx\n",
		"no stage":        "<!-- output: -->\n```text\nx\n```\n",
		"not a stage dir": "<!-- output: pid -->\n```text\nx\n```\n",
		"no space":        "<!--output: 01-pid-namespace-->\n```text\nx\n```\n",
		"unclosed quote":  "<!-- output: 01-pid-namespace -- sh -c 'echo -->\n```text\nx\n```\n",
	} {
		if _, errs := parseChapter("docs/x.md", text); len(errs) != 1 {
			t.Errorf("%s: want one error, got %v", name, errs)
		}
	}
}
