/*
 * pk_activation — making an LV usable on this host, and unusable again.
 *
 * Four verbs, two backends chosen at run time by the `activation` setting
 * (production hosts and lab hosts need both, so this is one of the few
 * function-pointer tables in poolkeeper):
 *
 *   dm   device-mapper through LVM: lvchange -ay / --refresh / -an
 *        (common/activation_dm.c); path /dev/<vg>/<lv>.
 *   lab  pk-lvmapd, the FUSE linear mapper of hosts without device-mapper
 *        (common/activation_lab.c): activate builds a linear table from the
 *        LV's segments in LVM metadata and loads it through
 *        <lvmap_dir>/.control; refresh loads it again (after an extend the
 *        table has the new segments; open files see the new size at once);
 *        deactivate removes it; path <lvmap_dir>/<vg>/<lv>.
 *
 * Semantics shared by both backends:
 *  - activate of an active LV succeeds (and, lab, reloads its table);
 *    deactivate of an inactive LV succeeds;
 *  - deactivate of an LV that is open on this host fails with
 *    PK_E_IN_USE;
 *  - path() only formats the name (no I/O) and works whether or not the
 *    LV is active.
 * Activation reads LVM metadata but never writes it, so HSMs may call it.
 *
 * Threads: every verb may be called from any thread (pk_lvm serialises
 * LVM; one lab command is one write(2)). The caller serialises verbs on the
 * same LV (the image/volume locks of hsmd do).
 */
#ifndef PK_ACTIVATION_H
#define PK_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/lvm.h"
#include "common/lvmap.h"

enum pk_activation_kind {
	PK_ACTIVATION_DM = 1,
	PK_ACTIVATION_LAB = 2,
};

struct pk_activation_config {
	enum pk_activation_kind kind;
	const char *lvmap_dir; /* lab: mount point of pk-lvmapd (required) */
};

struct pk_activation;

/* "dm" or "lab"; INVALID_ARGUMENT otherwise. */
int pk_activation_kind_parse(const char *name, enum pk_activation_kind *ret,
			     struct pk_error *err);
const char *pk_activation_kind_name(enum pk_activation_kind kind);

/*
 * Sets up a backend. lvm is borrowed and must outlive the activation; the
 * config is copied. Free with pk_activation_free (NULL-safe), which leaves
 * active LVs active.
 */
int pk_activation_new(const struct pk_activation_config *config, struct pk_lvm *lvm,
		      struct pk_activation **ret, struct pk_error *err);
void pk_activation_free(struct pk_activation *act);

enum pk_activation_kind pk_activation_kind(const struct pk_activation *act);

int pk_activation_activate(struct pk_activation *act, const char *vg, const char *lv,
			   struct pk_error *err);
int pk_activation_refresh(struct pk_activation *act, const char *vg, const char *lv,
			  struct pk_error *err);
int pk_activation_deactivate(struct pk_activation *act, const char *vg, const char *lv,
			     struct pk_error *err);

/* Writes the LV's path into buf (size bytes); INVALID_ARGUMENT if it does
 * not fit or a name is not an LVM name. */
int pk_activation_path(const struct pk_activation *act, const char *vg, const char *lv,
		       char *buf, size_t size, struct pk_error *err);

/* ---- for the backends (common/activation_*.c) and their tests only ---- */

/* What a backend gets: the borrowed LVM handle and the settings. */
struct pk_activation_ctx {
	struct pk_lvm *lvm;
	const char *lvmap_dir;
};

struct pk_activation_ops {
	int (*activate)(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
			struct pk_error *err);
	int (*refresh)(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		       struct pk_error *err);
	int (*deactivate)(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
			  struct pk_error *err);
	int (*path)(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		    char *buf, size_t size, struct pk_error *err);
};

extern const struct pk_activation_ops pk_activation_dm_ops;
extern const struct pk_activation_ops pk_activation_lab_ops;

/*
 * The lab backend's table: LV lv of VG vg (both as reported, vg with its
 * PVs' pe_start, extent_size from the LV report) as 512-byte-sector
 * segments on the PVs: a segment of extent_count extents at PV extent p
 * maps to sector (pe_start + p * extent_size) / 512 of its PV. Fails with
 * PK_E_UNSUPPORTED for an LV that is not linear, PK_E_ILLEGAL when a
 * segment lies on a PV the VG report does not list or the numbers do not
 * fit. ret is filled only on success (caller releases).
 */
int pk_activation_lab_table(const struct pk_lvm_vg *vg, const struct pk_lvm_lv *lv,
			    uint64_t extent_size, struct pk_lvmap_table *ret,
			    struct pk_error *err);

#endif
