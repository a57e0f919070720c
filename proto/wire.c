#include "proto/wire.h"

#include <errno.h>
#include <string.h>

Pk__VolumeFormat pk_wire_volume_format(enum pk_volume_format format)
{
	switch (format) {
	case PK_VOLUME_RAW:
		return PK__VOLUME_FORMAT__FORMAT_RAW;
	case PK_VOLUME_COW:
		return PK__VOLUME_FORMAT__FORMAT_COW;
	}
	return PK__VOLUME_FORMAT__FORMAT_UNSPECIFIED;
}

Pk__VolumeRole pk_wire_volume_role(enum pk_volume_role role)
{
	switch (role) {
	case PK_VOLUME_LEAF:
		return PK__VOLUME_ROLE__ROLE_LEAF;
	case PK_VOLUME_INTERNAL:
		return PK__VOLUME_ROLE__ROLE_INTERNAL;
	}
	return PK__VOLUME_ROLE__ROLE_UNSPECIFIED;
}

Pk__Legality pk_wire_legality(enum pk_volume_legality legality)
{
	switch (legality) {
	case PK_VOLUME_LEGAL:
		return PK__LEGALITY__LEGALITY_LEGAL;
	case PK_VOLUME_ILLEGAL:
		return PK__LEGALITY__LEGALITY_ILLEGAL;
	case PK_VOLUME_REMOVING:
		return PK__LEGALITY__LEGALITY_REMOVING;
	}
	return PK__LEGALITY__LEGALITY_UNSPECIFIED;
}

Pk__VolumeInfo *pk_wire_volume_info(struct pk_arena *a, const char *domain, const char *volume,
				    const struct pk_volume_meta *meta, uint64_t lv_size,
				    const char *path)
{
	Pk__VolumeInfo *w = pk_arena_new(a, Pk__VolumeInfo);

	pk__volume_info__init(w);
	w->domain_id = pk_arena_strdup(a, domain);
	w->image_id = pk_arena_strdup(a, meta->image);
	w->volume_id = pk_arena_strdup(a, volume);
	w->parent_id =
		pk_arena_strdup(a, strcmp(meta->parent, PK_META_NO_PARENT) ? meta->parent : "");
	w->format = pk_wire_volume_format(meta->format);
	w->role = pk_wire_volume_role(meta->role);
	w->legality = pk_wire_legality(meta->legality);
	w->capacity = meta->capacity;
	w->lv_size = lv_size;
	w->generation = meta->generation;
	w->description = pk_arena_strdup(a, meta->description);
	w->path = pk_arena_strdup(a, path ? path : "");
	return w;
}

int pk_wire_count_check(const char *field, size_t n, size_t max, struct pk_error *err)
{
	if (n > max) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "%s has %zu entries, more than the limit of %zu", field, n, max);
	}
	return 0;
}
