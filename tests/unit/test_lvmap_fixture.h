/*
 * Table builders for the unit tests of the lab mapper: test_lvmap.c (the
 * table arithmetic and command format of common/lvmap.c) and test_lvmapd.c
 * (the mappings served by lvmapd/lvmapd.c) both name tables and append
 * segments that must be accepted.
 *
 * Included by one test file each (static inline functions).
 */
#ifndef TEST_LVMAP_FIXTURE_H
#define TEST_LVMAP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/lvmap.h"

static inline void table_named(struct pk_lvmap_table *t, const char *vg, const char *lv)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->vg, sizeof(t->vg), "%s", vg);
	snprintf(t->lv, sizeof(t->lv), "%s", lv);
}

/* Adds segments (count, pv, pv_offset) and asserts each succeeds. */
static inline void add_ok(struct pk_lvmap_table *t, uint64_t count, const char *pv,
			  uint64_t off)
{
	struct pk_error err;

	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_table_add(t, count, pv, off, &err), 0);
	assert_false(pk_error_is_set(&err));
}

#endif
