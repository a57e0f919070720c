/*
 * pk_wire — our plain C values as the wire's messages and enums, written
 * once for every edge that sends them (hsm/rpc*.c, spm/rpc*.c and the
 * typed calls of proto/spm_client.c).
 *
 * Enums map case by case; a value with no wire counterpart (0, or one
 * added on our side only) becomes the wire's *_UNSPECIFIED, never a
 * plausible neighbour, so a reader can tell "unknown" from a real value.
 *
 * Includes generated headers: for proto/, hsm/rpc*.c, spm/rpc*.c, ctl/
 * and tests only (scripts/check-includes).
 */
#ifndef PK_WIRE_H
#define PK_WIRE_H

#include <stdint.h>

#include <stddef.h>

#include "common/arena.h"
#include "common/error.h"
#include "common/meta.h"
#include "proto/types.pb-c.h"

/*
 * Beside every cast between one of our enums and the wire's that relies on
 * equal numbering: a renumbering on either side then fails the build.
 */
#define PK_WIRE_SAME(ours, wire) \
	_Static_assert((int)(ours) == (int)(wire), #ours " must equal " #wire " (a cast relies on it)")

Pk__VolumeFormat pk_wire_volume_format(enum pk_volume_format format);
Pk__VolumeRole pk_wire_volume_role(enum pk_volume_role role);
Pk__Legality pk_wire_legality(enum pk_volume_legality legality);

/*
 * A VolumeInfo for volume (its LV name) of domain, built in arena a (every
 * string copied). path: the host path of a prepared volume, NULL or "" for
 * none. A base volume's parent goes out as "".
 */
Pk__VolumeInfo *pk_wire_volume_info(struct pk_arena *a, const char *domain, const char *volume,
				    const struct pk_volume_meta *meta, uint64_t lv_size,
				    const char *path);

/*
 * A repeated field's count from the wire, checked before anything is
 * allocated for it: INVALID_ARGUMENT naming the field and the limit when
 * n > max. (protobuf-c's own arrays are bounded by max_message; ours are
 * bounded by what the verb can take.)
 */
int pk_wire_count_check(const char *field, size_t n, size_t max, struct pk_error *err);

#endif
