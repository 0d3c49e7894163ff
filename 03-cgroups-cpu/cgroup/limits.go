package cgroup

import (
	"fmt"
	"math"
)

// The kernel's bounds for CFS bandwidth control, in microseconds: a quota
// of at least 1 ms, a period between 1 ms and 1 s. 100 ms is the default
// period on both versions, and docker's.
const (
	MinQuotaUs      = 1000
	MinPeriodUs     = 1000
	MaxPeriodUs     = 1000000
	DefaultPeriodUs = 100000
)

// ValidateCPU checks a quota and period before they reach the kernel, so
// that a bad value gets a sentence instead of "invalid argument". quotaUs
// -1 means no limit.
func ValidateCPU(quotaUs int64, periodUs uint64) error {
	if periodUs < MinPeriodUs || periodUs > MaxPeriodUs {
		return fmt.Errorf("period %d µs is outside the kernel's range %d..%d µs (1 ms to 1 s); %d is the usual one", periodUs, MinPeriodUs, MaxPeriodUs, DefaultPeriodUs)
	}
	if quotaUs != -1 && quotaUs < MinQuotaUs {
		return fmt.Errorf("quota %d µs is below the kernel's minimum of %d µs (1 ms); %d per %d µs period is 20%% of one CPU", quotaUs, MinQuotaUs, 20000, DefaultPeriodUs)
	}
	return nil
}

// CPUsToQuota turns a CPU count, as in `docker run --cpus 0.2`, into the
// quota for a period: cpus × period (0.2 × 100000 µs = 20000 µs).
func CPUsToQuota(cpus float64, periodUs uint64) (int64, error) {
	if !(cpus > 0) || math.IsInf(cpus, 0) {
		return 0, fmt.Errorf("--cpus %v is not a positive number of CPUs: 0.2 is a fifth of one CPU, 1.5 one and a half", cpus)
	}
	q := int64(math.Round(cpus * float64(periodUs)))
	if err := ValidateCPU(q, periodUs); err != nil {
		return 0, fmt.Errorf("--cpus %v gives %v", cpus, err)
	}
	return q, nil
}

// ResolveCPU applies docker's rules to CPU flags: either a CPU count
// (--cpus) or a quota, never both; the period defaults to 100000 µs when
// periodUs is 0. It returns the quota and period to give SetCPU, validated.
func ResolveCPU(quotaUs int64, quotaSet bool, periodUs uint64, cpus float64, cpusSet bool) (int64, uint64, error) {
	if periodUs == 0 {
		periodUs = DefaultPeriodUs
	}
	if cpusSet && quotaSet {
		return 0, 0, fmt.Errorf("--cpus and a quota were both given: --cpus %v already sets the quota (%v × the period); give one of them", cpus, cpus)
	}
	if cpusSet {
		q, err := CPUsToQuota(cpus, periodUs)
		return q, periodUs, err
	}
	return quotaUs, periodUs, ValidateCPU(quotaUs, periodUs)
}
