/*
 * pk_lvm_text — the pure half of the LVM adapter: what poolkeeper writes to
 * LVM (names, tags, the lvm.conf settings) and reads back from it (report
 * rows, error text). No liblvm2cmd calls, no I/O, no state: the real
 * adapter (common/lvm.c) and its fake (tests/fakes/fake_lvm.c) both use
 * these, so they accept and refuse the same arguments, and the parsers are
 * unit-tested on report text captured from LVM 2.03.
 *
 * Report rows are LVM's `--nameprefixes` form, one row per line:
 *   LVM2_LV_NAME='lv1' LVM2_LV_SIZE='83886080' LVM2_LV_TAGS='a,b' ...
 * (sizes in bytes: `--units b --nosuffix`). The parsers modify the text in
 * place and fill their result only on success.
 */
#ifndef PK_LVM_TEXT_H
#define PK_LVM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/lvm.h"

/* Field lists of the two reports the parsers read (for `-o`). */
extern const char pk_lvm_report_vg_fields[];
extern const char pk_lvm_report_lv_fields[];

/*
 * Argument checks (see lvm.h for the rules). Each returns 0 or fills err
 * with PK_E_INVALID_ARGUMENT naming the offending value.
 */
int pk_lvm_vg_name_check(const char *vg, struct pk_error *err);
int pk_lvm_lv_name_check(const char *lv, struct pk_error *err);
int pk_lvm_tag_check(const char *tag, struct pk_error *err);
/* Every tag of a NULL-terminated list (NULL = empty); *ret_count if non-NULL. */
int pk_lvm_tags_check(const char *const *tags, size_t *ret_count, struct pk_error *err);
/* A tag change: valid tags, at least one, none both added and deleted. */
int pk_lvm_tags_change_check(const char *const *add, const char *const *del,
			     struct pk_error *err);
/* An absolute path of [A-Za-z0-9/_.+:@=-], shorter than PK_LVM_PATH_MAX. */
int pk_lvm_path_check(const char *what, const char *path, struct pk_error *err);
/* A positive multiple of 512 that fits an off_t. */
int pk_lvm_size_check(const char *what, uint64_t size, struct pk_error *err);
/*
 * The arguments of pk_lvm_vg_create: name, tags, at least one PV, each one
 * of devices (NULL-terminated) and none twice, extent size 0 or a power of
 * two >= 1 MiB.
 */
int pk_lvm_vg_create_check(const char *const *devices, const char *vg, const char *const *pvs,
			   uint64_t extent_size, const char *const *tags, struct pk_error *err);

/*
 * The arguments of pk_lvm_lv_activation: names, a known op, and LVM
 * running with device-mapper (activation) — else PK_E_UNSUPPORTED.
 */
int pk_lvm_activation_check(bool activation, const char *vg, const char *lv,
			    enum pk_lvm_activation op, struct pk_error *err);
/* "activation", "refresh", "deactivation" ("unknown" otherwise). */
const char *pk_lvm_activation_name(enum pk_lvm_activation op);

/*
 * The lvm.conf poolkeeper runs LVM with (see lvm.h), for these devices
 * (checked with pk_lvm_path_check by the caller). umask is written as
 * global/umask. Returns a heap string the caller frees.
 */
char *pk_lvm_settings_render(const char *const *devices, bool activation, unsigned umask,
			     const char *backup_dir);

/*
 * Maps a failed command to an error code from lvm2_run's return code and
 * the error lines LVM printed: lock contention -> PK_E_BUSY, "insufficient
 * free space" -> PK_E_NO_SPACE, "already exists" -> PK_E_ALREADY_EXISTS,
 * PV or LV in use, foreign signature -> PK_E_IN_USE, "not found" ->
 * PK_E_NOT_FOUND, anything else (bad command line included) ->
 * PK_E_INTERNAL.
 */
enum pk_errc pk_lvm_classify_failure(int rc, const char *text);

/* Parses a `vgs -o pk_lvm_report_vg_fields` report of one VG (a row per PV). */
int pk_lvm_report_vg_parse(char *text, struct pk_lvm_vg *ret, struct pk_error *err);

/*
 * Parses an `lvs --segments -o pk_lvm_report_lv_fields` report (a row per
 * segment, an LV's rows together). Checks that the segments of each linear
 * LV cover it from extent 0 without a gap.
 */
int pk_lvm_report_lvs_parse(char *text, struct pk_lvm_lv_list *ret, struct pk_error *err);

#endif
