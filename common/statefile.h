/*
 * pk_statefile — durable, atomic records on the host (merge jobs, tasks).
 *
 * pk_statefile_write() replaces `<dir>/<name>` so that after a crash at any
 * instant the file holds either the old or the new content, never a mix:
 * it writes `<dir>/.<name>.tmp`, fsyncs it, renames it over the target and
 * fsyncs the directory. Names are plain file names ([A-Za-z0-9._-], no
 * leading dot, no '/'), never paths from the wire.
 */
#ifndef PK_STATEFILE_H
#define PK_STATEFILE_H

#include <stddef.h>

#include "common/error.h"
#include "common/strv.h"

/* Creates dir (and parents) with mode 0700 if missing. */
int pk_statefile_mkdir(const char *dir, struct pk_error *err);

int pk_statefile_write(const char *dir, const char *name, const void *data, size_t len,
		       struct pk_error *err);

/* Reads a whole file; *ret_data (heap, caller frees) is NUL-terminated. */
int pk_statefile_read(const char *dir, const char *name, void **ret_data, size_t *ret_len,
		      struct pk_error *err);

/* Removes the file and fsyncs the directory; a missing file is success. */
int pk_statefile_remove(const char *dir, const char *name, struct pk_error *err);

/*
 * Lists the record names in dir ending in `suffix` (e.g. ".job"), skipping
 * temp files, sorted. *ret_names is a common/strv.h array (NULL when
 * there is none); free with pk_strv_free.
 */
int pk_statefile_list(const char *dir, const char *suffix, char ***ret_names,
		      size_t *ret_count, struct pk_error *err);

#endif
