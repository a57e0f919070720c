#include "common/statefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"

static int statefile_name_check(const char *name, struct pk_error *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > 200 || name[0] == '.') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "invalid state file name '%.64s'", name);
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "invalid state file name '%.64s'", name);
		}
	}
	return 0;
}

int pk_statefile_mkdir(const char *dir, struct pk_error *err)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "invalid directory '%s'", dir);
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(path, 0700) < 0 && errno != EEXIST) {
				int e = errno;
				return pk_error_set(err, PK_E_IO, e, "cannot create '%s': %s", path,
						    strerror(e));
			}
			*p = '/';
		}
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		return pk_error_set(err, PK_E_IO, e, "cannot create '%s': %s", path, strerror(e));
	}
	return 0;
}

static int statefile_fsync_dir(const char *dir, struct pk_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		int e = errno;
		return pk_error_set(err, PK_E_IO, e, "cannot open '%s': %s", dir, strerror(e));
	}
	if (fsync(fd) < 0) {
		int e = errno;
		r = pk_error_set(err, PK_E_IO, e, "fsync of '%s' failed: %s", dir, strerror(e));
	}
	close(fd);
	return r;
}

int pk_statefile_write(const char *dir, const char *name, const void *data, size_t len,
		       struct pk_error *err)
{
	char tmp[PATH_MAX], target[PATH_MAX];
	const char *p = data;
	int fd, r;

	r = statefile_name_check(name, err);
	if (r < 0) {
		return r;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(target, sizeof(target), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		return pk_error_set(err, PK_E_IO, e, "cannot create '%s': %s", tmp, strerror(e));
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			int e = errno;
			if (e == EINTR) {
				continue;
			}
			r = pk_error_set(err, e == ENOSPC ? PK_E_NO_SPACE : PK_E_IO, e,
					 "write of '%s' failed: %s", tmp, strerror(e));
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		int e = errno;
		r = pk_error_set(err, PK_E_IO, e, "fsync of '%s' failed: %s", tmp, strerror(e));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, target) < 0) {
		int e = errno;
		r = pk_error_set(err, PK_E_IO, e, "rename to '%s' failed: %s", target, strerror(e));
		goto fail;
	}
	return statefile_fsync_dir(dir, err);
fail:
	if (fd >= 0) {
		close(fd);
	}
	unlink(tmp);
	return r;
}

int pk_statefile_read(const char *dir, const char *name, void **ret_data, size_t *ret_len,
		      struct pk_error *err)
{
	char path[PATH_MAX];
	struct pk_buf buf = PK_BUF_INIT;
	int fd, r;

	r = statefile_name_check(name, err);
	if (r < 0) {
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return pk_error_set(err, e == ENOENT ? PK_E_NOT_FOUND : PK_E_IO, e,
				    "cannot open '%s': %s", path, strerror(e));
	}
	for (;;) {
		ssize_t n = read(fd, pk_buf_reserve(&buf, 4096), 4096);

		if (n < 0) {
			int e = errno;
			if (e == EINTR) {
				continue;
			}
			close(fd);
			pk_buf_release(&buf);
			return pk_error_set(err, PK_E_IO, e, "read of '%s' failed: %s", path,
					    strerror(e));
		}
		if (n == 0) {
			break;
		}
		pk_buf_commit(&buf, (size_t)n);
	}
	close(fd);
	*ret_data = pk_buf_steal(&buf, ret_len);
	return 0;
}

int pk_statefile_remove(const char *dir, const char *name, struct pk_error *err)
{
	char path[PATH_MAX];
	int r = statefile_name_check(name, err);

	if (r < 0) {
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) < 0) {
		int e = errno;
		if (e == ENOENT) {
			return 0;
		}
		return pk_error_set(err, PK_E_IO, e, "cannot remove '%s': %s", path, strerror(e));
	}
	return statefile_fsync_dir(dir, err);
}

static int statefile_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pk_statefile_list(const char *dir, const char *suffix, char ***ret_names,
		      size_t *ret_count, struct pk_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct pk_strv names = PK_STRV_INIT;
	size_t slen = strlen(suffix);

	if (!d) {
		int e = errno;
		if (e == ENOENT) {
			*ret_names = NULL;
			*ret_count = 0;
			return 0;
		}
		return pk_error_set(err, PK_E_IO, e, "cannot list '%s': %s", dir, strerror(e));
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= slen ||
		    strcmp(de->d_name + len - slen, suffix) != 0) {
			continue;
		}
		pk_strv_push(&names, de->d_name);
	}
	closedir(d);
	if (names.n > 1) {
		qsort(names.v, names.n, sizeof(*names.v), statefile_name_cmp);
	}
	*ret_names = pk_strv_steal(&names, ret_count);
	return 0;
}
