/*
 * pk_uuid — identities of domains, images, volumes, jobs and tasks.
 *
 * poolkeeper accepts only the canonical lowercase form
 * (8-4-4-4-12 hex digits, 36 characters). Because paths and LVM names are
 * derived from these ids, pk_uuid_valid() is the gate every id from the
 * wire passes before it is used.
 */
#ifndef PK_UUID_H
#define PK_UUID_H

#include <stdbool.h>

#include "common/error.h"

#define PK_UUID_STRLEN 36
#define PK_UUID_BUFLEN 37

/* True when s is a canonical lowercase UUID. NULL-safe (false). */
bool pk_uuid_valid(const char *s);

/* Writes a new random UUID into out. */
void pk_uuid_generate(char out[PK_UUID_BUFLEN]);

/*
 * Validates a UUID argument; on failure fills err with INVALID_ARGUMENT,
 * naming the field (e.g. "volume_id"), and returns -EINVAL.
 */
int pk_uuid_check(const char *field, const char *s, struct pk_error *err);

/*
 * Checks the ids of a request: domain and image always, volume when not
 * NULL (each named in the message: "domain_id", "image_id", "volume_id").
 */
int pk_uuid_check_ids(const char *domain, const char *image, const char *volume,
		      struct pk_error *err);

#endif
