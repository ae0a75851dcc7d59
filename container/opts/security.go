package opts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const securityOptForms = "want seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], apparmor=PROFILE, label=..., systempaths=unconfined"

// splitSecurityOpt splits KEY=VALUE (or the deprecated KEY:VALUE).
func splitSecurityOpt(opt string) (k, v string, ok bool) {
	if strings.Contains(opt, "=") {
		return strings.Cut(opt, "=")
	}
	return strings.Cut(opt, ":")
}

// ParseSecurityOpts checks --security-opt values as the docker CLI does and returns them as
// they are stored in HostConfig.SecurityOpt: seccomp=FILE is read and becomes
// seccomp=<compacted JSON>. Accepted: seccomp=unconfined|builtin|FILE,
// no-new-privileges[=true|false] (also no-new-privileges:BOOL), apparmor=PROFILE, label=...,
// writable-cgroups[=BOOL] and systempaths=unconfined (see SplitSystemPaths).
func ParseSecurityOpts(values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, opt := range values {
		if opt == "no-new-privileges" || opt == "writable-cgroups" {
			out = append(out, opt)
			continue
		}
		k, v, ok := splitSecurityOpt(opt)
		if !ok || v == "" {
			return nil, fmt.Errorf("invalid --security-opt: %q (%s)", opt, securityOptForms)
		}
		switch k {
		case "seccomp":
			if v != "unconfined" && v != "builtin" {
				data, err := os.ReadFile(v)
				if err != nil {
					return nil, fmt.Errorf("opening seccomp profile (%s) failed: %v", v, err)
				}
				var b bytes.Buffer
				if err := json.Compact(&b, data); err != nil {
					return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %v", v, err)
				}
				opt = "seccomp=" + b.String()
			}
		case "no-new-privileges", "writable-cgroups":
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("invalid --security-opt: %q (%s wants true or false)", opt, k)
			}
		case "apparmor":
		case "label":
			if err := validLabelOpt(v); err != nil {
				return nil, fmt.Errorf("invalid --security-opt: %q: %v", opt, err)
			}
		case "systempaths":
			if v != "unconfined" {
				return nil, fmt.Errorf("invalid --security-opt: %q (systempaths only takes unconfined)", opt)
			}
		default:
			return nil, fmt.Errorf("invalid --security-opt: %q (%s)", opt, securityOptForms)
		}
		out = append(out, opt)
	}
	return out, nil
}

// SplitSystemPaths removes systempaths=unconfined from security options, as the docker CLI
// does: when it was there, maskedPaths and readonlyPaths are empty non-nil slices for
// HostConfig.MaskedPaths / ReadonlyPaths (nothing masked, nothing read-only); else nil (the
// defaults).
func SplitSystemPaths(secOpts []string) (filtered, maskedPaths, readonlyPaths []string) {
	filtered = make([]string, 0, len(secOpts))
	for _, o := range secOpts {
		if o == "systempaths=unconfined" {
			maskedPaths, readonlyPaths = []string{}, []string{}
			continue
		}
		filtered = append(filtered, o)
	}
	return filtered, maskedPaths, readonlyPaths
}

func validLabelOpt(v string) error {
	if v == "disable" || v == "nested" {
		return nil
	}
	k, _, ok := strings.Cut(v, ":")
	switch k {
	case "user", "role", "type", "level", "filetype":
		if ok {
			return nil
		}
	}
	return fmt.Errorf("bad label option %q, valid options 'disable', 'nested' or 'user, role, level, type, filetype' followed by ':' and a value", v)
}

// Security is what HostConfig.SecurityOpt asks for, read as the docker daemon does.
type Security struct {
	NoNewPrivileges bool
	// Seccomp is "" (the default profile), "unconfined", "builtin" (the default profile,
	// explicitly) or a profile's JSON.
	Seccomp         string
	AppArmorProfile string
	Labels          []string
	WritableCgroups *bool
}

// ParseSecurity reads HostConfig.SecurityOpt (as ParseSecurityOpts stores them).
func ParseSecurity(secOpts []string) (Security, error) {
	var s Security
	for _, opt := range secOpts {
		switch opt {
		case "no-new-privileges":
			s.NoNewPrivileges = true
			continue
		case "writable-cgroups":
			t := true
			s.WritableCgroups = &t
			continue
		case "disable":
			s.Labels = append(s.Labels, "disable")
			continue
		}
		k, v, ok := splitSecurityOpt(opt)
		if !ok {
			return Security{}, fmt.Errorf("invalid --security-opt: %q (%s)", opt, securityOptForms)
		}
		switch k {
		case "label":
			if err := validLabelOpt(v); err != nil {
				return Security{}, fmt.Errorf("invalid --security-opt: %q: %v", opt, err)
			}
			s.Labels = append(s.Labels, v)
		case "apparmor":
			s.AppArmorProfile = v
		case "seccomp":
			if v == "" {
				return Security{}, fmt.Errorf("invalid --security-opt: %q (%s)", opt, securityOptForms)
			}
			s.Seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Security{}, fmt.Errorf("invalid --security-opt: %q (no-new-privileges wants true or false)", opt)
			}
			s.NoNewPrivileges = b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Security{}, fmt.Errorf("invalid --security-opt: %q (writable-cgroups wants true or false)", opt)
			}
			s.WritableCgroups = &b
		default:
			return Security{}, fmt.Errorf("invalid --security-opt: %q (%s)", opt, securityOptForms)
		}
	}
	return s, nil
}
