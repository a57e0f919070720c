#include "common/lvm_text.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---- argument checks ---------------------------------------------------- */

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int name_check(const char *what, const char *name, struct pk_error *err)
{
	size_t n;

	if (!name || !*name) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "%s name is empty", what);
	}
	n = strlen(name);
	if (n >= PK_LVM_NAME_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s name '%.32s...' is longer than %d characters", what, name,
				    PK_LVM_NAME_MAX - 1);
	}
	if (name[0] == '-' || name[0] == '.') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s name '%s' starts with '%c'", what, name, name[0]);
	}
	for (size_t i = 0; i < n; i++) {
		if (!alnum(name[i]) && !strchr("_.+-", name[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s name '%.64s' has a character outside "
					    "[A-Za-z0-9_.+-] at offset %zu",
					    what, name, i);
		}
	}
	return 0;
}

int pk_lvm_vg_name_check(const char *vg, struct pk_error *err)
{
	return name_check("volume group", vg, err);
}

int pk_lvm_lv_name_check(const char *lv, struct pk_error *err)
{
	/* Name parts LVM keeps for its own sub-LVs. */
	static const char *const reserved[] = {
		"_cdata", "_cmeta", "_corig", "_cpool", "_cvol",  "_imeta", "_iorig",
		"_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta",
		"_vdata", "_vorigin", "_wcorig",
	};
	int r = name_check("logical volume", lv, err);

	if (r < 0) {
		return r;
	}
	if (strcmp(lv, "snapshot") == 0 || strncmp(lv, "pvmove", 6) == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "logical volume name '%s' is reserved by LVM", lv);
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (strstr(lv, reserved[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "logical volume name '%s' contains '%s', which LVM "
					    "reserves",
					    lv, reserved[i]);
		}
	}
	return 0;
}

int pk_lvm_tag_check(const char *tag, struct pk_error *err)
{
	size_t n = tag ? strlen(tag) : 0;

	if (n == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "empty LVM tag");
	}
	if (n > PK_LVM_TAG_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "LVM tag '%.40s...' is %zu characters long, more than %d", tag,
				    n, PK_LVM_TAG_MAX);
	}
	/* Anything else first could read as an option, a comment ('#') or
	 * a tag reference ('@') on LVM's command line. */
	if (!alnum(tag[0])) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "LVM tag '%.64s' does not start with a letter or digit", tag);
	}
	for (size_t i = 0; i < n; i++) {
		if (!alnum(tag[i]) && !strchr("_.+-/=!:&#", tag[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "LVM tag '%.64s' has a character outside "
					    "[A-Za-z0-9_.+/=!:&#-] at offset %zu",
					    tag, i);
		}
	}
	return 0;
}

int pk_lvm_tags_check(const char *const *tags, size_t *ret_count, struct pk_error *err)
{
	size_t n = 0;

	for (; tags && tags[n]; n++) {
		int r = pk_lvm_tag_check(tags[n], err);

		if (r < 0) {
			return r;
		}
	}
	if (ret_count) {
		*ret_count = n;
	}
	return 0;
}

int pk_lvm_tags_change_check(const char *const *add, const char *const *del,
			     struct pk_error *err)
{
	size_t nadd, ndel;
	int r;

	if ((r = pk_lvm_tags_check(add, &nadd, err)) < 0 ||
	    (r = pk_lvm_tags_check(del, &ndel, err)) < 0) {
		return r;
	}
	if (nadd + ndel == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a tag change needs at least one tag to add or delete");
	}
	for (size_t i = 0; i < nadd; i++) {
		for (size_t j = 0; j < ndel; j++) {
			if (strcmp(add[i], del[j]) == 0) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "tag '%s' is both added and deleted", add[i]);
			}
		}
	}
	return 0;
}

int pk_lvm_path_check(const char *what, const char *path, struct pk_error *err)
{
	size_t n = path ? strlen(path) : 0;

	if (n == 0 || path[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%.64s' is not an absolute path", what, path ? path : "");
	}
	if (n >= PK_LVM_PATH_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%.40s...' is longer than %d characters", what, path,
				    PK_LVM_PATH_MAX - 1);
	}
	for (size_t i = 0; i < n; i++) {
		if (!alnum(path[i]) && !strchr("/_.+:@=-", path[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s '%.64s' has a character outside "
					    "[A-Za-z0-9/_.+:@=-]",
					    what, path);
		}
	}
	return 0;
}

int pk_lvm_size_check(const char *what, uint64_t size, struct pk_error *err)
{
	if (size == 0 || size % 512 != 0 || size > (uint64_t)INT64_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s %" PRIu64 " is not a positive multiple of 512 bytes "
				    "below 8 EiB",
				    what, size);
	}
	return 0;
}

int pk_lvm_vg_create_check(const char *const *devices, const char *vg, const char *const *pvs,
			   uint64_t extent_size, const char *const *tags, struct pk_error *err)
{
	int r;

	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 ||
	    (r = pk_lvm_tags_check(tags, NULL, err)) < 0) {
		return r;
	}
	if (!pvs || !pvs[0]) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume group '%s' needs at least one PV", vg);
	}
	for (size_t i = 0; pvs[i]; i++) {
		if (!pk_lvm_tags_contain((char *const *)devices, pvs[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "device '%.64s' is not one of the configured LVM "
					    "devices (lvm_devices)",
					    pvs[i]);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(pvs[i], pvs[j]) == 0) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "device '%s' is given twice", pvs[i]);
			}
		}
	}
	if (extent_size && (extent_size < (1u << 20) || (extent_size & (extent_size - 1)))) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "extent size %" PRIu64 " is not a power of two of at least "
				    "1 MiB",
				    extent_size);
	}
	return 0;
}

const char *pk_lvm_activation_name(enum pk_lvm_activation op)
{
	switch (op) {
	case PK_LVM_ACTIVATE:
		return "activation";
	case PK_LVM_REFRESH:
		return "refresh";
	case PK_LVM_DEACTIVATE:
		return "deactivation";
	}
	return "unknown";
}

int pk_lvm_activation_check(bool activation, const char *vg, const char *lv,
			    enum pk_lvm_activation op, struct pk_error *err)
{
	int r;

	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 || (r = pk_lvm_lv_name_check(lv, err)) < 0) {
		return r;
	}
	if (op != PK_LVM_ACTIVATE && op != PK_LVM_REFRESH && op != PK_LVM_DEACTIVATE) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown activation operation %d", (int)op);
	}
	if (!activation) {
		return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
				    "no %s of '%s/%s': LVM runs without device-mapper on this "
				    "host (the lab activation backend serves LVs instead)",
				    pk_lvm_activation_name(op), vg, lv);
	}
	return 0;
}
