#include "hsm/vmfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hsm/vmxml.h"

/* A name: relative, printable ASCII, no empty, "." or ".." component. The
 * realpath check below is what keeps a name inside; refusing these early
 * gives the caller a message about what they sent, not about the host. */
static int boot_name_check(const char *field, const char *name, struct pk_error *err)
{
	const char *p = name;

	if (!name || !*name) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "%s: empty name", field);
	}
	if (strlen(name) > NAME_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "%s: name longer than %d characters", field, NAME_MAX);
	}
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (*c < 0x21 || *c > 0x7e) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: the name contains a space, control or non-ASCII "
					    "character", field);
		}
	}
	if (name[0] == '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%s' is a host path: give the name of a file in hsmd's "
				    "boot directory (setting boot_dir)", field, name);
	}
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.')) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s '%s' has an empty, '.' or '..' component: give the "
					    "name of a file in hsmd's boot directory", field, name);
		}
		p += len;
		if (*p == '/') {
			p++;
			if (!*p) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "%s '%s' ends with '/'", field, name);
			}
		}
	}
	return 0;
}

static bool path_under(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (n == 1) { /* "/": everything is under it */
		return path[0] == '/';
	}
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int hsm_vmfiles_boot_resolve(const char *boot_dir, const char *field, const char *name,
			     char *ret, size_t ret_size, struct pk_error *err)
{
	char dir[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int fd, r;

	r = boot_name_check(field, name, err);
	if (r < 0) {
		return r;
	}
	if (!boot_dir || boot_dir[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s: hsmd's boot_dir setting is not an absolute path", field);
	}
	if (!realpath(boot_dir, dir)) {
		return pk_error_set(err, PK_E_NOT_FOUND, errno,
				    "%s: hsmd's boot directory '%s' cannot be resolved: %s", field,
				    boot_dir, strerror(errno));
	}
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir, name) >= sizeof(full)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "%s '%s': the path is too long", field, name);
	}
	if (!realpath(full, real)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, errno,
				    "%s '%s' cannot be resolved in the boot directory '%s': %s",
				    field, name, dir, strerror(errno));
	}
	/* Where a symlink leads is not echoed: it is a host path. */
	if (!path_under(dir, real)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EACCES,
				    "%s '%s' leads out of the boot directory '%s' (a symlink "
				    "pointing outside): refused", field, name, dir);
	}
	/* O_NOFOLLOW: the resolved path must not have become a symlink since;
	 * O_NONBLOCK: a FIFO must not hang the caller before fstat says so. */
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, errno,
				    "%s '%s' in the boot directory cannot be opened: %s", field,
				    name, strerror(errno));
	}
	r = fstat(fd, &st);
	close(fd);
	if (r < 0 || !S_ISREG(st.st_mode)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%s' in the boot directory is not a regular file", field,
				    name);
	}
	if (strlen(real) >= ret_size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "%s '%s': the resolved path is too long", field, name);
	}
	memcpy(ret, real, strlen(real) + 1);
	return 0;
}

int hsm_vmfiles_serial_log(const char *log_dir, const char *vm, char *ret, size_t ret_size,
			   struct pk_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	if (!hsm_vm_name_valid(vm)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "serial log: invalid VM name");
	}
	if (!log_dir || log_dir[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "serial log: hsmd's log_dir setting is not an absolute path");
	}
	if (mkdir(log_dir, 0750) < 0 && errno != EEXIST) {
		return pk_error_set(err, PK_E_IO, errno, "serial log: cannot create '%s': %s",
				    log_dir, strerror(errno));
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.serial", log_dir, vm) >= sizeof(path) ||
	    strlen(path) >= ret_size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "serial log: the path under '%s' is too long", log_dir);
	}
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		return pk_error_set(err, PK_E_IN_USE, EEXIST,
				    "serial log '%s' exists and is not a regular file: refused",
				    path);
	}
	memcpy(ret, path, strlen(path) + 1);
	return 0;
}
