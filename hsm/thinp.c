/* hsm_thinp: the drive monitor (see thinp.h and docs/THIN.md). */
#include "hsm/thinp.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/hsm.h"
#include "hsm/image.h"
#include "hsm/merge.h"
#include "hsm/qemu_img.h"
#include "hsm/spm_calls.h"
#include "hsm/spm_wait.h"
#include "hsm/virt.h"
#include "hsm/vm.h"
#include "hsm/vmxml.h"

#define MIB HSM_THINP_MIB
/* libvirt's VIR_DOMAIN_PAUSED_IOERROR (virDomainPausedReason). */
#define PAUSED_IOERROR 5
/* A refused extension (not "no SPM now", not "no space") is tried again
 * this much later at most: the administrator has to act. */
#define REFUSED_RETRY_MS 10000

/* What the monitor keeps of one volume between checks: sizes that only
 * change when it (or a merge) extends the LV. */
struct vol {
	char id[PK_UUID_BUFLEN];
	bool cow;
	uint64_t lv_size;
	uint64_t max_size; /* fully allocated qcow2 of the capacity */
	bool fresh;        /* read from LVM in the check under way */
};

struct vm {
	struct vm *next;
	char name[HSM_VM_NAME_MAX + 1];
	bool queued;            /* waiting for a worker (at due_ms) */
	bool busy;              /* a worker checks it */
	bool again;             /* kicked while busy */
	bool reread;            /* read the volumes' sizes from LVM */
	uint64_t due_ms;        /* monotonic; 0: now */
	uint64_t trigger_ms;    /* first trigger not handled yet; 0: none */
	unsigned attempts;      /* failed extensions in a row (backoff) */
	uint64_t paused_ms;     /* when an ENOSPC pause was first seen; 0: none */
	char enospc_volume[PK_UUID_BUFLEN]; /* the volume that filled, if known */
	char status[HSM_THINP_STATUS_MAX];
	/* Worker-owned (only the worker that has it busy touches them). */
	struct vol *vols;
	size_t nvols;
};

struct hsm_thinp {
	struct hsm *hsm;
	struct hsm_thinp_policy p;
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* work queued, stopping, scan asked */
	/* Guarded by lock. */
	struct vm *vms;
	bool stopping;
	bool scan_now;
	struct hsm_thinp_counters counters;

	pthread_t *workers;
	size_t nworkers;
	pthread_t backstop;
	bool backstop_started;
};

/* ---- the queue ---------------------------------------------------------------- */

static struct vm *vm_find_locked(struct hsm_thinp *t, const char *name)
{
	for (struct vm *e = t->vms; e; e = e->next) {
		if (!strcmp(e->name, name)) {
			return e;
		}
	}
	return NULL;
}

static struct vm *vm_get_locked(struct hsm_thinp *t, const char *name)
{
	struct vm *e = vm_find_locked(t, name);

	if (!e && hsm_vm_name_valid(name)) {
		e = pk_xcalloc(1, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->reread = true;
		e->next = t->vms;
		t->vms = e;
	}
	return e;
}

/* Queues a check of vm now (a kick overrides a backoff: something changed). */
static void queue_locked(struct hsm_thinp *t, struct vm *e, bool trigger)
{
	if (trigger && !e->trigger_ms) {
		e->trigger_ms = pk_clock_monotonic_ms();
	}
	if (e->busy) {
		e->again = true;
	} else {
		e->queued = true;
		e->due_ms = 0;
	}
	pthread_cond_broadcast(&t->cond);
}

static void kick(struct hsm_thinp *t, const char *name, bool trigger, const char *enospc_path)
{
	struct vm *e;

	if (!t || !t->p.monitor || !name) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	e = vm_get_locked(t, name);
	if (e) {
		if (enospc_path) {
			char *id = hsm_path_volume_id(enospc_path);

			snprintf(e->enospc_volume, sizeof(e->enospc_volume), "%s",
				 pk_uuid_valid(id) ? id : "");
			free(id);
		}
		queue_locked(t, e, trigger);
	}
	pthread_mutex_unlock(&t->lock);
}

void hsm_thinp_on_threshold(struct hsm_thinp *t, const char *vm, const char *dev)
{
	(void)dev;
	kick(t, vm, true, NULL);
}

void hsm_thinp_on_io_error(struct hsm_thinp *t, const char *vm, const char *path,
			   const char *reason)
{
	bool enospc = reason && !strcmp(reason, "enospc");

	kick(t, vm, enospc, enospc ? path : NULL);
}

void hsm_thinp_kick(struct hsm_thinp *t, const char *vm)
{
	kick(t, vm, false, NULL);
}

void hsm_thinp_kick_all(struct hsm_thinp *t)
{
	if (!t) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->scan_now = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void hsm_thinp_vm_status(struct hsm_thinp *t, const char *vm, char *buf, size_t size)
{
	struct vm *e;

	if (size) {
		buf[0] = '\0';
	}
	if (!t || !vm) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	if ((e = vm_find_locked(t, vm))) {
		snprintf(buf, size, "%s", e->status);
	}
	pthread_mutex_unlock(&t->lock);
}

void hsm_thinp_counters(struct hsm_thinp *t, struct hsm_thinp_counters *ret)
{
	pthread_mutex_lock(&t->lock);
	*ret = t->counters;
	pthread_mutex_unlock(&t->lock);
}

/* ---- one check ------------------------------------------------------------------ */

/* The state of one check of a VM, filled as it goes. */
struct check {
	struct hsm_thinp *t;
	struct vm *e;
	const char *name;
	struct hsm_vmxml_domain dom;
	struct hsm_virt_node *nodes;
	size_t nnodes;
	bool short_of_space;   /* a watched volume needs space it did not get */
	unsigned retry_ms;     /* check again after this; 0: no need */
	char status[HSM_THINP_STATUS_MAX];
	uint64_t armed_ms;     /* when the last threshold was armed */
	unsigned extensions;   /* volumes extended in this check */
	/* One LVM read per check: the domain's volumes, read at the first need. */
	struct hsm_volume_list vols;
	char vols_domain[PK_UUID_BUFLEN];
};

static void check_release(struct check *c)
{
	hsm_vmxml_domain_release(&c->dom);
	hsm_virt_nodes_free(c->nodes, c->nnodes);
	c->nodes = NULL;
	c->nnodes = 0;
	hsm_volume_list_release(&c->vols);
	c->vols_domain[0] = '\0';
	for (size_t i = 0; i < c->e->nvols; i++) {
		c->e->vols[i].fresh = false;
	}
}

static void retry_after(struct check *c, unsigned ms)
{
	if (!c->retry_ms || ms < c->retry_ms) {
		c->retry_ms = ms;
	}
}

static struct vol *vol_cached(struct vm *e, const char *id)
{
	for (size_t i = 0; i < e->nvols; i++) {
		if (!strcmp(e->vols[i].id, id)) {
			return &e->vols[i];
		}
	}
	return NULL;
}

/* The sizes of volume id of a drive: from the cache, or from LVM when the
 * cache lacks them or a reread is due. LVM is read once per check (all
 * volumes of the domain at once); a volume read in this check is not read
 * again, so an extension made since is not undone by older numbers. */
static int vol_sizes(struct check *c, const struct hsm_drive_id *drive, const char *id,
		     struct vol **ret, struct pk_error *err)
{
	struct vm *e = c->e;
	const struct hsm_volume *v;
	struct vol *x = vol_cached(e, id);
	uint64_t full = 0;
	int r;

	if (x && (!e->reread || x->fresh)) {
		*ret = x;
		return 0;
	}
	if (strcmp(c->vols_domain, drive->domain_id) != 0) {
		hsm_volume_list_release(&c->vols);
		c->vols_domain[0] = '\0';
		r = hsm_volumes_read(c->t->hsm, drive->domain_id, &c->vols, err);
		if (r < 0) {
			return r;
		}
		snprintf(c->vols_domain, sizeof(c->vols_domain), "%s", drive->domain_id);
	}
	v = hsm_volume_list_find(&c->vols, id);
	if (!v) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "volume '%s' is not in domain '%s'",
				    id, drive->domain_id);
	}
	if (!x || x->max_size == 0) {
		if (v->meta.format == PK_VOLUME_COW) {
			r = hsm_qemu_img_measure_full(v->meta.capacity, &full, err);
			if (r < 0) {
				return r;
			}
		}
	} else {
		full = x->max_size;
	}
	if (!x) {
		e->vols = pk_xrealloc(e->vols, (e->nvols + 1) * sizeof(*e->vols));
		x = &e->vols[e->nvols++];
		memset(x, 0, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", id);
	}
	x->cow = v->meta.format == PK_VOLUME_COW;
	x->lv_size = v->lv_size;
	x->max_size = full;
	x->fresh = true;
	*ret = x;
	return 0;
}

/* The node of disk's layer pos in the stats, or NULL. */
static struct hsm_virt_node *node_of(struct check *c, const struct hsm_vmxml_disk *disk,
				     size_t pos)
{
	const struct hsm_vmxml_layer *l = &disk->layers[pos];

	for (size_t i = 0; i < c->nnodes; i++) {
		struct hsm_virt_node *n = &c->nodes[i];

		if (strcmp(n->target, disk->target) != 0) {
			continue;
		}
		if (l->index >= 0 && n->index >= 0 ? n->index == l->index : n->depth == pos) {
			return n;
		}
	}
	return NULL;
}

static void set_status(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_status(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->status[0]) {
		return; /* the first reason is the one to show */
	}
	va_start(ap, fmt);
	vsnprintf(c->status, sizeof(c->status), fmt, ap);
	va_end(ap);
}

/* An extension that did not happen: wait with backoff, say why. */
static void extension_failed(struct check *c, const char *vol, uint64_t want,
			     const struct pk_error *err)
{
	struct hsm_thinp *t = c->t;
	unsigned attempt, delay;
	bool waits = hsm_spm_error_waits(err) || err->code == PK_E_NO_SPACE;

	pthread_mutex_lock(&t->lock);
	attempt = ++c->e->attempts;
	t->counters.waits++;
	pthread_mutex_unlock(&t->lock);
	delay = waits ? hsm_thinp_retry_delay_ms(&t->p, attempt) : REFUSED_RETRY_MS;
	retry_after(c, delay);
	c->short_of_space = true;
	set_status(c, "waiting for space on volume %s (%" PRIu64 " MiB asked, attempt %u): %s [%s]",
		   vol, want / MIB, attempt, err->message, pk_errc_name(err->code));
	/* Every wait is logged: the first and then every 20th at warning, the
	 * others at debug (a paused VM retries every second). */
	if (attempt == 1 || attempt % 20 == 0) {
		pk_log_warn("thin volume '%s' of VM '%s' cannot grow to %" PRIu64
			    " MiB (attempt %u, retry in %u ms): %s", vol, c->name, want / MIB,
			    attempt, delay, err->message);
	} else {
		pk_log_debug("thin volume '%s' of VM '%s' still cannot grow (attempt %u): %s", vol,
			     c->name, attempt, err->message);
	}
}

/* Grows one volume to new_size through the SPM and refreshes it here. */
static int extend(struct check *c, const struct hsm_drive_id *drive, struct vol *x,
		  uint64_t alloc, uint64_t new_size, struct pk_error *err)
{
	struct hsm *hsm = c->t->hsm;
	uint64_t start = pk_clock_monotonic_ms(), lv_size = 0, refreshed = 0;
	int r;

	r = hsm_spm_volume_extend(hsm, drive->domain_id, drive->image_id, x->id, new_size,
				  &lv_size, err);
	if (r == 0) {
		r = hsm_volume_refresh(hsm, drive->domain_id, drive->image_id, x->id, &refreshed,
				       err);
		if (r < 0) {
			pk_error_prefix(err, "volume '%s' was extended but cannot be refreshed here",
					x->id);
		}
	}
	if (r < 0) {
		return r;
	}
	pk_log_info("thin volume '%s' of VM '%s' extended from %" PRIu64 " to %" PRIu64
		    " MiB (allocation %" PRIu64 " MiB, max %" PRIu64 " MiB) in %" PRIu64 " ms",
		    x->id, c->name, x->lv_size / MIB,
		    (refreshed ? refreshed : lv_size) / MIB, alloc / MIB, x->max_size / MIB,
		    pk_clock_monotonic_ms() - start);
	x->lv_size = refreshed ? refreshed : lv_size;
	c->extensions++;
	pthread_mutex_lock(&c->t->lock);
	c->t->counters.extends++;
	c->e->attempts = 0;
	pthread_mutex_unlock(&c->t->lock);
	return 0;
}

/* One watched node: extend while it needs space, then arm its threshold. */
static void watch_node(struct check *c, const struct hsm_drive_id *drive,
		       const struct hsm_vmxml_disk *disk, size_t pos, bool force)
{
	struct hsm_thinp *t = c->t;
	struct hsm_virt_node *n = node_of(c, disk, pos);
	char *id = hsm_path_volume_id(disk->layers[pos].path);
	char dev[HSM_VMXML_TARGET_MAX + 16];
	struct pk_error err;
	struct vol *x = NULL;
	uint64_t threshold;
	bool armed;

	pk_error_clear(&err);
	if (!n || !pk_uuid_valid(id) || disk->layers[pos].index < 0) {
		goto out; /* not one of our volumes, or qemu does not report it */
	}
	if (vol_sizes(c, drive, id, &x, &err) < 0) {
		pk_log_warn("thin volume '%s' of VM '%s': %s", id, c->name, err.message);
		retry_after(c, REFUSED_RETRY_MS);
		goto out;
	}
	if (!x->cow) {
		goto out;
	}
	/* Bounded: an SPM that answers success without growing must not spin us. */
	for (unsigned round = 0;
	     round < 8 && (force || hsm_thinp_needs_extend(&t->p, n->allocation, x->lv_size,
							   x->max_size));
	     round++) {
		uint64_t want = hsm_thinp_next_size(&t->p, n->allocation, x->lv_size, x->max_size, 0);

		if (want <= x->lv_size) {
			if (force) {
				pk_log_warn("VM '%s' paused on ENOSPC but volume '%s' is at its full "
					    "size (%" PRIu64 " MiB)", c->name, id, x->lv_size / MIB);
			}
			break;
		}
		if (extend(c, drive, x, n->allocation, want, &err) < 0) {
			extension_failed(c, id, want, &err);
			goto out;
		}
		force = false;
	}
	snprintf(dev, sizeof(dev), "%s[%d]", disk->target, disk->layers[pos].index);
	threshold = hsm_thinp_threshold(&t->p, x->lv_size, x->max_size, &armed);
	if (armed && threshold != n->threshold &&
	    hsm_virt_block_threshold_set(t->hsm->virt, c->name, dev, threshold, &err) < 0) {
		pk_log_warn("cannot arm the threshold of thin volume '%s' (%s) of VM '%s': %s", id,
			    dev, c->name, err.message);
		retry_after(c, 1000);
		goto out;
	}
	c->armed_ms = pk_clock_monotonic_ms();
out:
	free(id);
}

/* The watched nodes of one disk: the COW leaf, and the base of an active
 * commit (the mirror's destination). */
static void watch_disk(struct check *c, const struct hsm_vmxml_disk *disk,
		       const struct hsm_drive_id *drive, bool force_leaf)
{
	if (!disk->nlayers) {
		return;
	}
	if (disk->layers[0].format == HSM_DISK_FORMAT_QCOW2) {
		watch_node(c, drive, disk, 0, force_leaf);
	}
	if (disk->mirror_job == HSM_VMXML_MIRROR_JOB_ACTIVE_COMMIT && disk->mirror_dest.path) {
		int pos = hsm_vmxml_disk_find_path(disk, disk->mirror_dest.path);

		if (pos > 0 && disk->layers[pos].format == HSM_DISK_FORMAT_QCOW2) {
			watch_node(c, drive, disk, (size_t)pos, false);
		}
	}
}

/* The disk whose leaf filled: the one the I/O error named, else the leaf
 * with the least room left. */
static const struct hsm_vmxml_disk *enospc_disk(struct check *c)
{
	const struct hsm_vmxml_disk *best = NULL;
	uint64_t best_room = UINT64_MAX;

	for (size_t i = 0; i < c->dom.ndisks; i++) {
		const struct hsm_vmxml_disk *d = &c->dom.disks[i];
		struct hsm_virt_node *n;
		char *id;
		struct vol *x;
		uint64_t room;

		if (!d->nlayers || d->layers[0].format != HSM_DISK_FORMAT_QCOW2 ||
		    !(n = node_of(c, d, 0))) {
			continue;
		}
		id = hsm_path_volume_id(d->layers[0].path);
		if (c->e->enospc_volume[0] && !strcmp(id, c->e->enospc_volume)) {
			free(id);
			return d;
		}
		x = vol_cached(c->e, id);
		free(id);
		room = x && x->lv_size > n->allocation ? x->lv_size - n->allocation : 0;
		if (room < best_room) {
			best_room = room;
			best = d;
		}
	}
	return best;
}

/* After the volumes: resume a VM that ENOSPC paused, once nothing is short. */
static void resume_if_enospc(struct check *c)
{
	struct hsm_thinp *t = c->t;
	struct pk_error err;
	uint64_t paused_ms;

	pk_error_clear(&err);
	if (c->short_of_space) {
		return; /* still waiting: extension_failed set the status */
	}
	pthread_mutex_lock(&t->lock);
	paused_ms = c->e->paused_ms;
	pthread_mutex_unlock(&t->lock);
	if (hsm_virt_domain_resume(t->hsm->virt, c->name, &err) < 0) {
		if (err.code != PK_E_CONFLICT) { /* CONFLICT: resumed meanwhile */
			pk_log_warn("cannot resume VM '%s' after its ENOSPC pause: %s", c->name,
				    err.message);
			retry_after(c, 1000);
			set_status(c, "paused on ENOSPC, space is there but resume failed: %s",
				   err.message);
			return;
		}
	}
	pk_log_info("VM '%s' resumed after an ENOSPC pause of %" PRIu64 " ms", c->name,
		    paused_ms ? pk_clock_monotonic_ms() - paused_ms : 0);
	pthread_mutex_lock(&t->lock);
	t->counters.resumes++;
	c->e->paused_ms = 0;
	c->e->enospc_volume[0] = '\0';
	pthread_mutex_unlock(&t->lock);
}

/* True when the VM runs on this host's prepared volumes (its leaves are
 * links under our storage dir): hosts may share one libvirtd (the lab), and
 * only the hsmd that prepared a VM's images may grow them. */
static bool owned_here(const struct hsm *hsm, const struct hsm_vmxml_domain *dom)
{
	size_t n = strlen(hsm->storage_dir);

	for (size_t i = 0; i < dom->ndisks; i++) {
		const struct hsm_vmxml_disk *d = &dom->disks[i];

		if (d->nlayers && d->layers[0].path && !strncmp(d->layers[0].path, hsm->storage_dir, n) &&
		    d->layers[0].path[n] == '/') {
			return true;
		}
	}
	return false;
}

/* Checks one VM; false when it is gone (or not a running poolkeeper VM any
 * more) and can be forgotten. */
static bool check_vm(struct check *c)
{
	struct hsm_thinp *t = c->t;
	struct hsm *hsm = t->hsm;
	enum hsm_virt_state state;
	struct pk_error err;
	bool nospace = false, other = false, paused_enospc = false;
	const struct hsm_vmxml_disk *full_disk = NULL;
	char *xml = NULL;
	int reason = 0;
	bool keep = true;

	pk_error_clear(&err);
	if (!hsm->virt || !hsm_virt_connected(hsm->virt)) {
		return true; /* the reconnect checks every VM again */
	}
	if (hsm_virt_domain_state(hsm->virt, c->name, &state, &reason, &err) < 0) {
		return err.code != PK_E_NOT_FOUND;
	}
	if (state != HSM_VIRT_STATE_RUNNING && state != HSM_VIRT_STATE_PAUSED &&
	    state != HSM_VIRT_STATE_BLOCKED) {
		return false;
	}
	if (hsm_virt_domain_xml(hsm->virt, c->name, &xml, &err) < 0 ||
	    hsm_vmxml_domain_parse(xml, &c->dom, &err) < 0) {
		free(xml);
		if (err.code == PK_E_NOT_FOUND) {
			return false;
		}
		pk_log_warn("drive monitor: cannot read VM '%s': %s", c->name, err.message);
		retry_after(c, 1000);
		return true;
	}
	free(xml);
	if (!c->dom.has_metadata || !owned_here(hsm, &c->dom)) {
		return false;
	}
	if (state == HSM_VIRT_STATE_PAUSED) {
		if (reason != PAUSED_IOERROR) {
			return true; /* an administrator's (or a job's) pause: not ours */
		}
		if (hsm_virt_disk_errors(hsm->virt, c->name, &nospace, &other, &err) < 0) {
			retry_after(c, 1000);
			return true;
		}
		if (other || !nospace) {
			set_status(c, "paused on an I/O error that is not ENOSPC: hsmd does not "
				      "resume it (check the storage, then resume it by hand)");
			return true;
		}
		paused_enospc = true;
		pthread_mutex_lock(&t->lock);
		if (!c->e->paused_ms) {
			c->e->paused_ms = pk_clock_monotonic_ms();
			pk_log_warn("VM '%s' paused: a thin volume ran out of space (ENOSPC)",
				    c->name);
		}
		pthread_mutex_unlock(&t->lock);
	}
	if (hsm_virt_block_stats(hsm->virt, c->name, &c->nodes, &c->nnodes, &err) < 0) {
		keep = err.code != PK_E_NOT_FOUND;
		if (keep) {
			pk_log_warn("drive monitor: %s", err.message);
			retry_after(c, 1000);
		}
		return keep;
	}
	if (paused_enospc) {
		/* Sizes first, so the fullest leaf is found from fresh numbers. */
		for (size_t i = 0; i < c->dom.ndisks; i++) {
			const struct hsm_vmxml_disk *d = &c->dom.disks[i];
			const struct hsm_drive_id *drive = hsm_vmxml_domain_drive(&c->dom, d->target);
			struct vol *x;
			char *id;

			if (!drive || !d->nlayers) {
				continue;
			}
			id = hsm_path_volume_id(d->layers[0].path);
			if (pk_uuid_valid(id) && vol_sizes(c, drive, id, &x, &err) < 0) {
				pk_error_clear(&err);
			}
			free(id);
		}
		full_disk = enospc_disk(c);
	}
	for (size_t i = 0; i < c->dom.ndisks; i++) {
		const struct hsm_vmxml_disk *d = &c->dom.disks[i];
		const struct hsm_drive_id *drive = hsm_vmxml_domain_drive(&c->dom, d->target);

		if (drive) {
			watch_disk(c, d, drive, d == full_disk);
		}
	}
	if (paused_enospc) {
		resume_if_enospc(c);
	}
	return true;
}

/* ---- threads ------------------------------------------------------------------ */

/* The next VM due, or NULL; *ret_wait_ms: how long until one is due. */
static struct vm *next_due_locked(struct hsm_thinp *t, uint64_t now, uint64_t *ret_wait_ms)
{
	uint64_t wait = UINT64_MAX;

	for (struct vm *e = t->vms; e; e = e->next) {
		if (!e->queued || e->busy) {
			continue;
		}
		if (e->due_ms <= now) {
			return e;
		}
		if (e->due_ms - now < wait) {
			wait = e->due_ms - now;
		}
	}
	*ret_wait_ms = wait;
	return NULL;
}

static void vm_unlink_locked(struct hsm_thinp *t, struct vm *gone)
{
	for (struct vm **p = &t->vms; *p; p = &(*p)->next) {
		if (*p == gone) {
			*p = gone->next;
			free(gone->vols);
			free(gone);
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct hsm_thinp *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		uint64_t now = pk_clock_monotonic_ms(), wait_ms;
		struct vm *e = next_due_locked(t, now, &wait_ms);
		struct check c;
		uint64_t trigger_ms;
		bool keep;

		if (!e) {
			if (wait_ms == UINT64_MAX) {
				pthread_cond_wait(&t->cond, &t->lock);
			} else {
				struct timespec until;

				pk_clock_deadline(CLOCK_MONOTONIC, (unsigned)wait_ms, &until);
				pthread_cond_timedwait(&t->cond, &t->lock, &until);
			}
			continue;
		}
		e->queued = false;
		e->busy = true;
		e->again = false;
		trigger_ms = e->trigger_ms;
		e->trigger_ms = 0;
		pthread_mutex_unlock(&t->lock);

		memset(&c, 0, sizeof(c));
		c.t = t;
		c.e = e;
		c.name = e->name;
		keep = check_vm(&c);
		e->reread = false;
		check_release(&c);
		if (trigger_ms && c.armed_ms && c.extensions) {
			/* The monitor's own latency, what scripts/bench/thin reads. */
			pk_log_info("drive monitor: VM '%s' extended %u volume(s), trigger to re-armed "
				    "threshold %" PRIu64 " ms", e->name, c.extensions,
				    c.armed_ms - trigger_ms);
		}

		if (!e->status[0] != !c.status[0]) { /* a wait began or ended */
			hsm_merge_publish_vm_wait(t->hsm, e->name, c.status);
		}
		pthread_mutex_lock(&t->lock);
		e->busy = false;
		t->counters.checks++;
		snprintf(e->status, sizeof(e->status), "%s", c.status);
		if (!keep && !e->again) {
			vm_unlink_locked(t, e);
			continue;
		}
		if (e->again) {
			e->queued = true;
			e->due_ms = 0;
		} else if (c.retry_ms) {
			e->queued = true;
			e->due_ms = pk_clock_monotonic_ms() + c.retry_ms;
			if (c.short_of_space) {
				e->trigger_ms = trigger_ms; /* still not handled */
			}
		}
		if (!e->status[0]) {
			e->attempts = 0;
		}
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Queues every poolkeeper VM of the host; sizes are read again from LVM
 * (a merge or the administrator may have changed them). */
static void scan_all(struct hsm_thinp *t)
{
	char **names = NULL;
	size_t n = 0;
	struct pk_error err;

	pk_error_clear(&err);
	if (!t->hsm->virt || !hsm_virt_connected(t->hsm->virt) ||
	    hsm_virt_domain_list(t->hsm->virt, &names, &n, &err) < 0) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		struct vm *e = vm_get_locked(t, names[i]);

		if (e) {
			e->reread = true;
			if (!e->queued && !e->busy) {
				queue_locked(t, e, false);
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	pk_strv_free(names);
}

static void *backstop_main(void *arg)
{
	struct hsm_thinp *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		struct timespec until;

		pk_clock_deadline(CLOCK_MONOTONIC, t->p.check_seconds * 1000u, &until);
		while (!t->stopping && !t->scan_now) {
			if (pthread_cond_timedwait(&t->cond, &t->lock, &until) == ETIMEDOUT) {
				break;
			}
		}
		if (t->stopping) {
			break;
		}
		t->scan_now = false;
		pthread_mutex_unlock(&t->lock);
		scan_all(t);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* ---- life ------------------------------------------------------------------------ */

int hsm_thinp_new(struct hsm *hsm, const struct hsm_thinp_policy *p, struct hsm_thinp **ret,
		  struct pk_error *err)
{
	struct hsm_thinp *t;
	pthread_condattr_t ca;

	if (p->monitor && hsm_thinp_policy_check(p) < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "thin provisioning settings are out of range: thin_chunk_mb > 0, "
				    "thin_free_pct <= 100, thin_free_mb below the chunk, "
				    "thin_workers >= 1 (docs/THIN.md)");
	}
	t = pk_xcalloc(1, sizeof(*t));
	t->hsm = hsm;
	t->p = *p;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	*ret = t;
	return 0;
}

int hsm_thinp_start(struct hsm_thinp *t, struct pk_error *err)
{
	int r;

	if (!t->p.monitor) {
		pk_log_info("drive monitor off (thin_monitor = false): thin volumes do not grow");
		return 0;
	}
	t->workers = pk_xcalloc(t->p.workers, sizeof(*t->workers));
	for (size_t i = 0; i < t->p.workers; i++) {
		r = pthread_create(&t->workers[i], NULL, worker_main, t);
		if (r != 0) {
			hsm_thinp_stop(t);
			return pk_error_set(err, PK_E_INTERNAL, r, "cannot start a drive monitor worker");
		}
		t->nworkers++;
	}
	r = pthread_create(&t->backstop, NULL, backstop_main, t);
	if (r != 0) {
		hsm_thinp_stop(t);
		return pk_error_set(err, PK_E_INTERNAL, r, "cannot start the drive monitor");
	}
	t->backstop_started = true;
	pk_log_info("drive monitor on: chunk %" PRIu64 " MiB, extend at %" PRIu64
		    " MiB free, check every %u s, %u workers", t->p.chunk / MIB,
		    hsm_thinp_free_trigger(&t->p) / MIB, t->p.check_seconds, t->p.workers);
	hsm_thinp_kick_all(t);
	return 0;
}

void hsm_thinp_stop(struct hsm_thinp *t)
{
	if (!t) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < t->nworkers; i++) {
		pthread_join(t->workers[i], NULL);
	}
	t->nworkers = 0;
	free(t->workers);
	t->workers = NULL;
	if (t->backstop_started) {
		pthread_join(t->backstop, NULL);
		t->backstop_started = false;
	}
}

void hsm_thinp_free(struct hsm_thinp *t)
{
	if (!t) {
		return;
	}
	hsm_thinp_stop(t);
	while (t->vms) {
		vm_unlink_locked(t, t->vms);
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
