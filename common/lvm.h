/*
 * pk_lvm — poolkeeper's verbs on LVM, run in-process through liblvm2cmd.
 *
 * One struct pk_lvm holds the liblvm2cmd handle and poolkeeper's LVM
 * settings; every verb below turns into one (or, where stated, two) LVM
 * commands run with lvm2_run(), never by forking the `lvm` binary.
 *
 * Settings (the only place poolkeeper configures LVM):
 *  - a device filter (devices/filter and devices/global_filter) that
 *    accepts exactly the configured PV paths and rejects everything else,
 *    no devices file, no udev device list, no hints;
 *  - global/use_aio=0, use_lvmlockd=0, use_lvmpolld=0, notify_dbus=0;
 *    activation=0 when the host has no device-mapper (config->activation
 *    false); activation/udev_sync=0, udev_rules=0, monitoring=0;
 *  - backup/backup=0 archive=0 unless config->backup_dir is set, then
 *    both, under <backup_dir>/backup and <backup_dir>/archive. Default
 *    off: the SPM role moves between hosts, so a host-local history is
 *    partial and misleading; the metadata areas on the PVs keep LVM's
 *    own copies.
 *  - global/wait_for_locks=0: LVM's file locks are never waited on inside
 *    LVM; a command that meets a held lock is retried by pk_lvm for at
 *    most config->lock_timeout_ms and then fails with PK_E_BUSY, so no
 *    caller blocks for an unbounded time behind another LVM process.
 *  - global/umask = the process's umask (LVM would otherwise set 0077 for
 *    the whole process).
 * The settings are rendered once by pk_lvm_new() into
 * <conf_dir>/lvm.conf and liblvm2cmd is initialised on that directory
 * (LVM_SYSTEM_DIR), so the host's /etc/lvm/lvm.conf is not read. They are
 * not also passed as --config on each command: measured here (LVM 2.03.16,
 * 10 LVs), any --config makes LVM rebuild its whole context before and
 * after the command, +0.5-0.8 ms on a 1.5-2 ms lvcreate; and with LVM's
 * default use_aio=1 in the base context every rebuild also creates and
 * destroys an aio context, ~37 ms per command. The settings cannot change
 * after pk_lvm_new() (the PV list is host configuration).
 *
 * Threads: liblvm2cmd is not thread-safe and its log function and device
 * cache are process-wide, so every lvm2_run() in the process is
 * serialised by one process-wide mutex, and at most ONE struct pk_lvm may
 * exist in a process at a time (pk_lvm_new fails with PK_E_BUSY
 * otherwise). Every verb may be called from any thread.
 *
 * pk_lvm_new() MUST be called before the process starts other threads: it
 * sets LVM_SYSTEM_DIR and restores the locale around lvm2_init(). Other
 * process-wide effects of liblvm2cmd: it calls openlog("lvm") once; while
 * a command runs it may briefly install its own SIGINT handler; and with
 * device-mapper activation (dm backend) LVM's suspend/resume critical
 * section mlock()s the process's mappings while it lasts, as it does in
 * the lvm binary.
 *
 * Conventions:
 *  - Names (vg, lv) are LVM names: [A-Za-z0-9_.+-], 1..127 characters, not
 *    starting with '-' or '.', and (LVs) none of LVM's reserved names or
 *    suffixes. Tags: [A-Za-z0-9_.+/=!:&#-], 1..PK_LVM_TAG_MAX characters,
 *    starting with a letter or digit. A bad argument fails with
 *    PK_E_INVALID_ARGUMENT before LVM runs.
 *  - String lists (pvs, tags) are NULL-terminated arrays; NULL means empty.
 *  - Sizes are bytes. LV sizes must be multiples of 512; LVM rounds them
 *    up to whole extents.
 *  - LVM failures map to PK_E_NOT_FOUND, PK_E_ALREADY_EXISTS,
 *    PK_E_NO_SPACE, PK_E_BUSY (lock held past the timeout), PK_E_IN_USE,
 *    else PK_E_INTERNAL; the message names the command and carries LVM's
 *    own error lines.
 *  - Report structs are filled only on success and are owned by the caller
 *    (release with the matching _release function).
 */
#ifndef PK_LVM_H
#define PK_LVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/strv.h"

#define PK_LVM_NAME_MAX 128 /* buffer size: names are at most 127 chars */
#define PK_LVM_TAG_MAX 128  /* longest tag (chars) */
#define PK_LVM_PATH_MAX 256 /* buffer size of a PV path */
#define PK_LVM_UUID_MAX 40  /* buffer size of an LVM uuid (38 chars) */

struct pk_lvm;

struct pk_lvm_config {
	/* PV paths LVM may see (absolute, [A-Za-z0-9/_.+:@=-]); at least one. */
	const char *const *devices;
	/* false on hosts without device-mapper: LVM metadata only. */
	bool activation;
	/*
	 * Directory poolkeeper owns for the generated lvm.conf (created 0700
	 * if missing), e.g. <run_dir>/lvm. NULL: a private temporary
	 * directory, removed by pk_lvm_free().
	 */
	const char *conf_dir;
	/* NULL: no LVM metadata backups or archives (see above). */
	const char *backup_dir;
	/* Longest wait for LVM's file locks; 0 means 10000 ms. */
	unsigned lock_timeout_ms;
};

struct pk_lvm_pv {
	char name[PK_LVM_PATH_MAX];
	uint64_t size;
	uint64_t free;
	uint64_t pe_start; /* bytes from the start of the PV to its first extent */
};

/* A VG as reported. Heap parts owned by the struct: pk_lvm_vg_release(). */
struct pk_lvm_vg {
	char name[PK_LVM_NAME_MAX];
	char uuid[PK_LVM_UUID_MAX];
	uint64_t size;
	uint64_t free;
	uint64_t extent_size;
	uint64_t extent_count;
	uint64_t free_count;
	char **tags; /* NULL-terminated, never NULL after a report */
	size_t ntags;
	struct pk_lvm_pv *pvs;
	size_t npvs;
};

/* One linear segment: LV extents [start_extent, +extent_count) on a PV. */
struct pk_lvm_segment {
	uint64_t start_extent; /* first logical extent of the LV */
	uint64_t extent_count;
	char pv[PK_LVM_PATH_MAX];
	uint64_t pv_start_extent; /* first physical extent on the PV */
};

struct pk_lvm_lv {
	char name[PK_LVM_NAME_MAX];
	char uuid[PK_LVM_UUID_MAX];
	uint64_t size;
	char **tags; /* NULL-terminated, never NULL after a report */
	size_t ntags;
	/*
	 * false when a segment is not a one-stripe linear segment (striped,
	 * thin, raid, ...): poolkeeper does not create such LVs; segments is
	 * then empty.
	 */
	bool linear;
	struct pk_lvm_segment *segments; /* in LV order, contiguous from 0 */
	size_t nsegments;
};

/* LVs of one VG. Owned by the caller: pk_lvm_lv_list_release(). */
struct pk_lvm_lv_list {
	uint64_t extent_size; /* of the VG; 0 when the list is empty */
	struct pk_lvm_lv *lvs;
	size_t count;
};

enum pk_lvm_activation {
	PK_LVM_ACTIVATE = 1, /* lvchange -ay */
	PK_LVM_REFRESH,      /* lvchange --refresh (after an extend) */
	PK_LVM_DEACTIVATE,   /* lvchange -an */
};

/*
 * Initialises liblvm2cmd with the settings of config (copied). Fails with
 * PK_E_BUSY when another struct pk_lvm exists in the process, with
 * PK_E_INVALID_ARGUMENT for a bad device path or directory.
 */
int pk_lvm_new(const struct pk_lvm_config *config, struct pk_lvm **ret,
	       struct pk_error *err);
/* NULL-safe. */
void pk_lvm_free(struct pk_lvm *lvm);

/*
 * The write guard: called right before each attempt of a command that
 * writes LVM metadata (vgcreate, vgremove, vgchange tags, lvcreate,
 * lvremove, lvextend, lvchange tags; not reports or activation), so a
 * command retried on LVM's file locks asks again before every try. A
 * negative return (with err set) stops the command unrun with that error.
 * It runs on the calling thread, outside the liblvm2cmd lock. spmd's guard
 * checks the SPM lease. NULL fn: no guard. Set before other threads use
 * lvm.
 */
typedef int pk_lvm_write_guard_fn(void *ctx, const char *vg, struct pk_error *err);
void pk_lvm_write_guard_set(struct pk_lvm *lvm, pk_lvm_write_guard_fn *fn, void *ctx);

/* True when path is one of the configured devices. */
bool pk_lvm_device_allowed(const struct pk_lvm *lvm, const char *path);

/*
 * Creates VG `vg` on pvs (each must be a configured device; LVM
 * initialises them as PVs if needed; a device with a foreign signature
 * or in another VG is refused), with the given tags, in one vgcreate.
 * extent_size 0: LVM's default (4 MiB); else a power of two >= 1 MiB.
 */
int pk_lvm_vg_create(struct pk_lvm *lvm, const char *vg, const char *const *pvs,
		     uint64_t extent_size, const char *const *tags,
		     struct pk_error *err);

/* Fills *ret (caller releases) with the VG and one entry per PV. */
int pk_lvm_vg_report(struct pk_lvm *lvm, const char *vg, struct pk_lvm_vg *ret,
		     struct pk_error *err);

/*
 * Removes VG `vg` (the PVs keep their labels and can be reused). Without
 * force, a VG that still has LVs is refused with PK_E_IN_USE; with force
 * its LVs are removed too. Two LVM commands (a report, then vgremove).
 */
int pk_lvm_vg_remove(struct pk_lvm *lvm, const char *vg, bool force,
		     struct pk_error *err);

/* Adds and deletes VG tags in one vgchange (one metadata commit). */
int pk_lvm_vg_tags_change(struct pk_lvm *lvm, const char *vg, const char *const *add,
			  const char *const *del, struct pk_error *err);

/*
 * Creates a linear LV of `size` bytes (rounded up to extents) carrying
 * tags, in one lvcreate (so an LV never exists without its tags). The LV is
 * left inactive and is neither zeroed nor wiped: activation is the
 * activation backend's business and content is written by its user.
 */
int pk_lvm_lv_create(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     const char *const *tags, struct pk_error *err);

/* Removes an LV (lvremove -f; LVM refuses an LV open on this host). */
int pk_lvm_lv_remove(struct pk_lvm *lvm, const char *vg, const char *lv,
		     struct pk_error *err);

/*
 * Grows an LV to at least `size` bytes (rounded up to extents). An LV
 * that is already that large is left alone and 0 is returned. New
 * extents may land on any PV of the VG (a new segment).
 */
int pk_lvm_lv_extend(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err);

/*
 * Shrinks an LV to `size` bytes (rounded up to extents; lvreduce --force:
 * the caller knows nothing lives past it). An LV already that small or
 * smaller is left alone and 0 is returned.
 */
int pk_lvm_lv_reduce(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err);

/*
 * Adds and deletes LV tags in ONE lvchange, i.e. one LVM metadata commit:
 * after a crash either all changes are on storage or none. At least one
 * tag in add or del. Deleting a tag the LV does not have is not an error.
 */
int pk_lvm_lv_tags_change(struct pk_lvm *lvm, const char *vg, const char *lv,
			  const char *const *add, const char *const *del,
			  struct pk_error *err);

/*
 * Reports the LVs of vg with their tags and segments, in one lvs call;
 * lv NULL: every (visible) LV of the VG; else only that one (PK_E_NOT_FOUND
 * when missing). An existing VG without LVs gives an empty list.
 */
int pk_lvm_lv_report(struct pk_lvm *lvm, const char *vg, const char *lv,
		     struct pk_lvm_lv_list *ret, struct pk_error *err);

/*
 * Device-mapper activation on this host (lvchange -ay / --refresh / -an).
 * PK_E_UNSUPPORTED when config->activation is false.
 */
int pk_lvm_lv_activation(struct pk_lvm *lvm, const char *vg, const char *lv,
			 enum pk_lvm_activation op, struct pk_error *err);

/*
 * Helpers on report structs. They are inline so that the real adapter and
 * its fake (tests/fakes/fake_lvm.c) share one definition.
 */

/* Frees the heap parts of vg and zeroes it. NULL-safe. */
static inline void pk_lvm_vg_release(struct pk_lvm_vg *vg)
{
	if (!vg) {
		return;
	}
	pk_strv_free(vg->tags);
	free(vg->pvs);
	memset(vg, 0, sizeof(*vg));
}

/* Frees every LV of list and zeroes it. NULL-safe. */
static inline void pk_lvm_lv_list_release(struct pk_lvm_lv_list *list)
{
	if (!list) {
		return;
	}
	for (size_t i = 0; i < list->count; i++) {
		pk_strv_free(list->lvs[i].tags);
		free(list->lvs[i].segments);
	}
	free(list->lvs);
	memset(list, 0, sizeof(*list));
}

/* The LV named lv in list, or NULL. */
static inline const struct pk_lvm_lv *pk_lvm_lv_list_find(const struct pk_lvm_lv_list *list,
							  const char *lv)
{
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->lvs[i].name, lv) == 0) {
			return &list->lvs[i];
		}
	}
	return NULL;
}

/* True when tags (NULL-terminated, may be NULL) contains tag. */
static inline bool pk_lvm_tags_contain(char *const *tags, const char *tag)
{
	for (size_t i = 0; tags && tags[i]; i++) {
		if (strcmp(tags[i], tag) == 0) {
			return true;
		}
	}
	return false;
}

#endif
