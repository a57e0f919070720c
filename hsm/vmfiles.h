/*
 * hsm_vmfiles — the host files a VM of hsmd uses besides its disks: the
 * direct-boot kernel and initrd, and the serial console log (rule 6 of
 * docs/DESIGN.md: nothing from the wire becomes a path).
 *
 *  - A boot file is a NAME under the configured boot directory (setting
 *    boot_dir), never a host path: a relative path without empty, "." or
 *    ".." components, resolved with realpath. The result MUST stay inside
 *    realpath(boot_dir) — a symlink inside the directory may point at
 *    another file inside it, never out — and be a regular file, checked on
 *    an O_NOFOLLOW descriptor of the resolved path. Anything else is
 *    INVALID_ARGUMENT naming the field.
 *  - The serial log path is derived here, <log_dir>/<vm>.serial, from a
 *    name hsm_vm_name_valid accepts (no '/', no leading '.'); no request
 *    chooses it. An existing entry there that is not a regular file (a
 *    symlink planted to make virtlogd write elsewhere) is refused.
 *
 * Outputs (ret) are written only on success. Reentrant; no logging.
 */
#ifndef HSM_VMFILES_H
#define HSM_VMFILES_H

#include <stddef.h>

#include "common/error.h"

#define HSM_BOOT_DIR_DEFAULT "/var/lib/poolkeeper/boot"
#define HSM_LOG_DIR_DEFAULT "/var/log/poolkeeper"

/*
 * Resolves boot file `name` (field: "kernel" or "initrd", for messages)
 * under boot_dir into ret (an absolute path of size ret_size, which libvirt
 * is given). INVALID_ARGUMENT for a bad name, a name that leaves the
 * directory or does not name a regular file in it; NOT_FOUND when boot_dir
 * itself does not exist (a host set-up problem, named in the message).
 */
int hsm_vmfiles_boot_resolve(const char *boot_dir, const char *field, const char *name,
			     char *ret, size_t ret_size, struct pk_error *err);

/*
 * The serial log of VM `vm`: <log_dir>/<vm>.serial into ret. Creates
 * log_dir (mode 0750, its parent must exist) when missing. INVALID_ARGUMENT
 * for an invalid VM name or a log_dir that is not absolute; IN_USE when
 * the path exists and is not a regular file; IO when log_dir cannot be
 * made.
 */
int hsm_vmfiles_serial_log(const char *log_dir, const char *vm, char *ret, size_t ret_size,
			   struct pk_error *err);

#endif
