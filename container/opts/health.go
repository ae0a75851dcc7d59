package opts

import (
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
)

// HealthFlags are the --health-* flags of docker run as given; a duration is a Go duration
// ("30s", "1m30s"), "" when the flag was not given.
type HealthFlags struct {
	Cmd           string // --health-cmd
	Interval      string // --health-interval
	Timeout       string // --health-timeout
	StartPeriod   string // --health-start-period
	StartInterval string // --health-start-interval
	Retries       int    // --health-retries
	None          bool   // --no-healthcheck
}

// ParseHealth builds Config.Healthcheck: nil when no flag was given (the image's check
// applies), Test ["NONE"] for --no-healthcheck, ["CMD-SHELL", cmd] for --health-cmd (an empty
// Test with only timings keeps the image's command). As docker, durations must not be negative
// and a non-zero one must be at least 1ms.
func ParseHealth(f HealthFlags) (*container.HealthConfig, error) {
	have := f.Cmd != "" || f.Interval != "" || f.Timeout != "" || f.StartPeriod != "" || f.StartInterval != "" || f.Retries != 0
	if f.None {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	h := &container.HealthConfig{Retries: f.Retries}
	if f.Cmd != "" {
		h.Test = []string{"CMD-SHELL", f.Cmd}
	}
	if f.Retries < 0 {
		return nil, fmt.Errorf("--health-retries cannot be negative (got %d)", f.Retries)
	}
	for _, d := range []struct {
		flag, val string
		dst       *time.Duration
	}{
		{"--health-interval", f.Interval, &h.Interval},
		{"--health-timeout", f.Timeout, &h.Timeout},
		{"--health-start-period", f.StartPeriod, &h.StartPeriod},
		{"--health-start-interval", f.StartInterval, &h.StartInterval},
	} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q: want a duration such as 30s or 1m30s", d.flag, d.val)
		}
		if v < 0 {
			return nil, fmt.Errorf("%s cannot be negative (got %s)", d.flag, d.val)
		}
		if v != 0 && v < container.MinimumDuration {
			return nil, fmt.Errorf("%s cannot be less than %s (got %s)", d.flag, container.MinimumDuration, d.val)
		}
		*d.dst = v
	}
	return h, nil
}
