package initproc

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setLabels asks the kernel to apply the AppArmor profile or SELinux label at execve. The
// runtime has already warned and cleared them when the host has no such LSM.
func setLabels(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		if err := writeAttr("apparmor/exec", "exec "+p.ApparmorProfile); err != nil {
			if err2 := writeAttr("exec", "exec "+p.ApparmorProfile); err2 != nil {
				return fmt.Errorf("apply apparmor profile %q: %w", p.ApparmorProfile, err)
			}
		}
	}
	if p.SelinuxLabel != "" {
		if err := writeAttr("exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("apply selinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

// writeAttr writes /proc/thread-self/attr/<name>. /proc here is the container's own fresh
// procfs mount (or, for exec, the one the container mounted): we verify it is procfs before
// writing (CVE-2025-52881: label writes redirected to a fake file).
func writeAttr(name, value string) error {
	f, err := os.OpenFile("/proc/thread-self/attr/"+name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := checkProcfs(f); err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	return err
}
