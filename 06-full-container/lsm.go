package main

// Linux security modules: an OCI config may name an AppArmor profile
// (process.apparmorProfile) or SELinux labels (process.selinuxLabel,
// linux.mountLabel). This runtime applies neither. Where the module is not
// enforcing on this host, the field changes nothing for any runtime (runc
// skips an AppArmor profile when AppArmor is off, and an unenforced
// label confines nothing), so it is accepted; where the module enforces,
// running the container without what the config asks would be running it
// with less confinement than its author wanted: refused, by name.

import (
	"fmt"
	"os"
	"strings"
)

// apparmorEnforcing: the AppArmor module is loaded and on.
func apparmorEnforcing() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// selinuxEnforcing: SELinux is in enforcing mode (permissive only logs).
func selinuxEnforcing() bool {
	b, err := os.ReadFile("/sys/fs/selinux/enforce")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// checkLSMFields refuses an AppArmor profile or an SELinux label that this
// host would enforce.
func checkLSMFields(apparmorProfile, selinuxLabel, mountLabel string) error {
	if apparmorProfile != "" && apparmorProfile != "unconfined" && apparmorEnforcing() {
		return fmt.Errorf("process.apparmorProfile %q: AppArmor is enabled on this host and this runtime does not apply profiles: remove it, or set it to \"unconfined\"", apparmorProfile)
	}
	for field, label := range map[string]string{"process.selinuxLabel": selinuxLabel, "linux.mountLabel": mountLabel} {
		if label != "" && selinuxEnforcing() {
			return fmt.Errorf("%s: SELinux is enforcing on this host and this runtime does not apply labels: remove it", field)
		}
	}
	return nil
}
