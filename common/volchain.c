#include "common/volchain.h"

#include <errno.h>
#include <string.h>

bool pk_volchain_live(const struct pk_volume_meta *m)
{
	return m->legality != PK_VOLUME_REMOVING &&
	       !(m->legality == PK_VOLUME_ILLEGAL && m->generation == 0);
}

bool pk_volchain_orphaned(const struct pk_volume_meta *m)
{
	return m->legality == PK_VOLUME_ILLEGAL && m->role == PK_VOLUME_INTERNAL;
}

static bool in_chain(const struct pk_volume_meta *m)
{
	return pk_volchain_live(m) && !pk_volchain_orphaned(m);
}

static ssize_t find(const struct pk_volchain_item *items, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(items[i].id, id)) {
			return (ssize_t)i;
		}
	}
	return -1;
}

static int find_leaf(const struct pk_volchain_item *items, size_t n, const char *domain,
		     const char *image, size_t *ret, struct pk_error *err)
{
	ssize_t leaf = -1;
	size_t members = 0;

	for (size_t i = 0; i < n; i++) {
		const struct pk_volume_meta *m = items[i].meta;
		bool is_parent = false;

		if (strcmp(m->image, image) != 0) {
			continue;
		}
		members++;
		if (!in_chain(m)) {
			continue;
		}
		for (size_t k = 0; k < n && !is_parent; k++) {
			is_parent = !strcmp(items[k].meta->parent, items[i].id) &&
				    in_chain(items[k].meta);
		}
		if (is_parent) {
			continue;
		}
		if (leaf < 0 || (items[leaf].meta->role != PK_VOLUME_LEAF && m->role == PK_VOLUME_LEAF)) {
			leaf = (ssize_t)i;
		} else if (items[leaf].meta->role == m->role) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					    "image '%s' has two tops, '%s' and '%s'; its metadata needs "
					    "repair", image, items[leaf].id, items[i].id);
		}
	}
	if (members == 0) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "image '%s' has no volumes in domain '%s'", image, domain);
	}
	if (leaf < 0) {
		return pk_error_set(err, PK_E_ILLEGAL, ENOENT,
				    "image '%s' has no usable leaf (all %zu volumes are being removed, "
				    "unfinished or merged away)", image, members);
	}
	*ret = (size_t)leaf;
	return 0;
}

int pk_volchain_build(const struct pk_volchain_item *items, size_t n, const char *domain,
		      const char *image, const char *leaf_id, size_t *ret_idx, size_t *ret_len,
		      struct pk_error *err)
{
	size_t cur = 0, len = 0;
	int r;

	if (leaf_id && *leaf_id) {
		ssize_t i = find(items, n, leaf_id);
		if (i < 0) {
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					    "volume '%s' not found in domain '%s'", leaf_id, domain);
		}
		if (strcmp(items[i].meta->image, image) != 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "volume '%s' belongs to image '%s', not to image '%s'",
					    leaf_id, items[i].meta->image, image);
		}
		cur = (size_t)i;
	} else {
		r = find_leaf(items, n, domain, image, &cur, err);
		if (r < 0) {
			return r;
		}
	}
	for (;;) {
		const struct pk_volume_meta *m = items[cur].meta;
		ssize_t p;

		for (size_t k = 0; k < len; k++) {
			if (ret_idx[k] == cur) {
				return pk_error_set(err, PK_E_ILLEGAL, ELOOP,
						    "image '%s' has a loop in its parent links at '%s'",
						    image, items[cur].id);
			}
		}
		ret_idx[len++] = cur;
		if (!strcmp(m->parent, PK_META_NO_PARENT)) {
			break;
		}
		p = find(items, n, m->parent);
		if (p < 0 || strcmp(items[p].meta->image, image) != 0) {
			return pk_error_set(err, PK_E_ILLEGAL, ENOENT,
					    "volume '%s' of image '%s' names parent '%s', which %s",
					    items[cur].id, image, m->parent,
					    p < 0 ? "does not exist" : "belongs to another image");
		}
		cur = (size_t)p;
	}
	*ret_len = len;
	return 0;
}
