package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Compile turns the OCI profile into a classic BPF program (what libseccomp
// would load), using libseccomp-golang to build the filter and ExportBPF to
// get the program bytes. Nothing is loaded here.
func Compile(cfg *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if cfg == nil {
		return nil, ErrNoProfile
	}
	// Validate every action and operator before touching libseccomp so a bad
	// profile is reported the same way whatever else is wrong with it.
	defAct, err := parseAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, err // already `seccomp: unknown action "X"`, the runtime's wording
	}
	rules := make([]rule, 0, len(cfg.Syscalls))
	for i := range cfg.Syscalls {
		r, err := parseRule(&cfg.Syscalls[i])
		if err != nil {
			return nil, fmt.Errorf("%w (syscalls[%d] %v)", err, i, cfg.Syscalls[i].Names)
		}
		rules = append(rules, r)
	}

	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	defer filter.Release()

	// The program is exported and loaded by Load, so libseccomp must not
	// assume it owns no_new_privs; whether NNP is set is the OCI
	// process.noNewPrivileges decision. libseccomp-golang offers no setter
	// for the TSYNC attribute NewFilter turns on, but that attribute only
	// changes seccomp_load's flags and never the exported program; TSYNC is
	// decided by Flags/Load instead.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: clear no_new_privs attribute: %w", err)
	}

	for _, a := range cfg.Architectures {
		arch, err := parseArch(a)
		if err != nil {
			return nil, err
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, fmt.Errorf("seccomp: add architecture %s: %w", a, err)
		}
	}

	maxNr := -1
	for _, r := range rules {
		// libseccomp rejects a rule that repeats the default action; runc
		// drops it, which is also what the filter would do anyway.
		skip := r.action == defAct
		for _, name := range r.names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				// Unknown to this libseccomp (too new, or a typo): runc
				// ignores it so one profile works across versions.
				continue
			}
			// Negative numbers are libseccomp pseudo-syscalls for names that
			// do not exist natively (socketcall on x86_64); they say nothing
			// about the native table's extent.
			if nr := int(call); nr > maxNr {
				maxNr = nr
			}
			if skip {
				continue
			}
			if err := addRule(filter, call, r); err != nil {
				return nil, fmt.Errorf("seccomp: add rule for %s: %w", name, err)
			}
		}
	}

	prog, err := exportBPF(filter)
	if err != nil {
		return nil, err
	}
	// Only an errno default can be refined to ENOSYS: a kill or trap default
	// is a deliberate "never", and an allow default needs no help.
	if isErrno(defAct) && defAct.GetReturnCode() != int16(unix.ENOSYS) && maxNr >= 0 {
		prog = prependENOSYSStub(prog, uint32(maxNr))
	}
	if len(prog) > bpfMaxInsns {
		return nil, fmt.Errorf("%w: %d instructions exceeds the kernel limit of %d", ErrBadProgram, len(prog), bpfMaxInsns)
	}
	return prog, nil
}

// rule is one syscalls[] entry with its strings already parsed, so parse
// errors surface before any libseccomp state is built.
type rule struct {
	names  []string
	action libseccomp.ScmpAction
	conds  []libseccomp.ScmpCondition
	// split is set when an argument index repeats: libseccomp cannot AND two
	// conditions on one argument, so runc adds one rule per condition (an OR).
	split bool
}

func parseRule(s *specs.LinuxSyscall) (rule, error) {
	act, err := parseAction(s.Action, s.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	r := rule{names: s.Names, action: act}
	seen := map[uint]bool{}
	for _, a := range s.Args {
		op, err := parseOperator(a.Op)
		if err != nil {
			return rule{}, err
		}
		var c libseccomp.ScmpCondition
		if op == libseccomp.CompareMaskedEqual {
			// OCI puts the mask in value and the expected result in valueTwo,
			// which is libseccomp's (datum_a, datum_b) order.
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return rule{}, fmt.Errorf("seccomp: args index %d: %w", a.Index, err)
		}
		if seen[a.Index] {
			r.split = true
		}
		seen[a.Index] = true
		r.conds = append(r.conds, c)
	}
	return r, nil
}

func addRule(f *libseccomp.ScmpFilter, call libseccomp.ScmpSyscall, r rule) error {
	switch {
	case len(r.conds) == 0:
		return f.AddRule(call, r.action)
	case r.split:
		for _, c := range r.conds {
			if err := f.AddRuleConditional(call, r.action, []libseccomp.ScmpCondition{c}); err != nil {
				return err
			}
		}
		return nil
	default:
		return f.AddRuleConditional(call, r.action, r.conds)
	}
}

func isErrno(a libseccomp.ScmpAction) bool {
	return a&0xffff == libseccomp.ActErrno
}
