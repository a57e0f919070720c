/*
 * pk_uuid — identities of domains, images, volumes, jobs and tasks.
 *
 * poolkeeper accepts only the canonical lowercase form
 * (8-4-4-4-12 hex digits, 36 characters). Because paths and LVM names are
 * derived from these ids, pk_uuid_valid() is the gate every id from the
 * wire passes before it is used.
 *
 * New ids are random (version 4, RFC 4122 variant) from getrandom(2): no
 * library, so every program may make ids (pkctl links only nng and
 * protobuf-c).
 */
#ifndef PK_UUID_H
#define PK_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define PK_UUID_STRLEN 36
#define PK_UUID_BUFLEN 37

/* True when s is a canonical lowercase UUID. NULL-safe (false). */
bool pk_uuid_valid(const char *s);

#define PK_UUID_BYTES 16

/* Writes a new random (version 4) UUID into out, lowercase. Cannot fail:
 * it aborts if the kernel gives no randomness (it blocks only before the
 * kernel's pool is first initialised, early at boot). */
void pk_uuid_generate(char out[PK_UUID_BUFLEN]);

/* The 16 bytes of the canonical UUID s; -EINVAL when s is not one
 * (pk_uuid_valid), and ret is then untouched. */
int pk_uuid_parse(const char *s, uint8_t ret[PK_UUID_BYTES]);

/* The canonical lowercase text of 16 bytes. */
void pk_uuid_format(const uint8_t u[PK_UUID_BYTES], char out[PK_UUID_BUFLEN]);

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
