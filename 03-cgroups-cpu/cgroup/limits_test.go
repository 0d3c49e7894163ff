package cgroup

import (
	"math"
	"strings"
	"testing"
)

func TestCPUValuesOutsideTheKernelsRangeAreRefusedInOneLine(t *testing.T) {
	cases := []struct {
		name     string
		quota    int64
		quotaSet bool
		period   uint64
		cpus     float64
		cpusSet  bool
		want     string // "" = valid
		wantQ    int64
		wantP    uint64
	}{
		{"article default", 20000, true, 100000, 0, false, "", 20000, 100000},
		{"no limit", -1, true, 0, 0, false, "", -1, 100000},
		{"quota at the minimum", 1000, true, 100000, 0, false, "", 1000, 100000},
		{"quota below 1000", 999, true, 100000, 0, false, "below the kernel's minimum of 1000", 0, 0},
		{"quota zero", 0, true, 100000, 0, false, "below the kernel's minimum", 0, 0},
		{"period below 1000", 20000, true, 999, 0, false, "outside the kernel's range 1000..1000000", 0, 0},
		{"period above 1 s", 20000, true, 1000001, 0, false, "outside the kernel's range", 0, 0},
		{"cpus 0.2", 0, false, 0, 0.2, true, "", 20000, 100000},
		{"cpus 0.5", 0, false, 100000, 0.5, true, "", 50000, 100000},
		{"cpus 1.5", 0, false, 100000, 1.5, true, "", 150000, 100000},
		{"cpus zero", 0, false, 0, 0, true, "not a positive number", 0, 0},
		{"cpus negative", 0, false, 0, -1, true, "not a positive number", 0, 0},
		{"cpus NaN", 0, false, 0, math.NaN(), true, "not a positive number", 0, 0},
		{"cpus too small for a 1 ms quota", 0, false, 100000, 0.001, true, "below the kernel's minimum", 0, 0},
		{"cpus and quota", 20000, true, 0, 0.2, true, "--cpus and a quota were both given", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, p, err := ResolveCPU(c.quota, c.quotaSet, c.period, c.cpus, c.cpusSet)
			if c.want == "" {
				if err != nil || q != c.wantQ || p != c.wantP {
					t.Errorf("= %d, %d, %v; want %d, %d, nil", q, p, err, c.wantQ, c.wantP)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}
