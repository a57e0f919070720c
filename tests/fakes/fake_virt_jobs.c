/* The fake libvirtd's snapshots and block jobs of hsm/virt.h (commit,
 * active commit, pull, job info, abort/pivot, bandwidth); see fake_virt.h. */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "tests/fakes/fake_virt_state.h"

static int get_running_disk(const char *name, const char *target, struct domain **ret_dom,
			    struct disk **ret_disk, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r = fake_virtd_get_dom(name, &d, err);

	if (r < 0) {
		return r;
	}
	k = fake_virtd_find_disk(d, target);
	if (!k) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "invalid argument: disk '%s' not found in domain",
				    target ? target : "");
	}
	if (d->state == HSM_VIRT_STATE_SHUTOFF) {
		return pk_error_set(err, PK_E_CONFLICT, EALREADY,
				    "Requested operation is not valid: domain is not running");
	}
	*ret_dom = d;
	*ret_disk = k;
	return 0;
}

/* Parses "vda[N]" for disk k; returns the chain position or -1. */
static int resolve_ref(const struct disk *k, const char *ref)
{
	size_t tl = strlen(k->target);
	char *end = NULL;
	long idx;

	if (!ref || strncmp(ref, k->target, tl) != 0 || ref[tl] != '[') {
		return -1;
	}
	idx = strtol(ref + tl + 1, &end, 10);
	if (!end || strcmp(end, "]") != 0) {
		return -1;
	}
	return fake_virtd_pos_of_index(k, (int)idx);
}

/* ---- hsm_virt: snapshots and block jobs ------------------------------------------------- */

struct snap_item {
	struct disk *disk;
	char *path;
	bool block;
};

/* Reads the external disks of a <domainsnapshot>; validates them all. */
static int snapshot_items(struct domain *d, const char *xml, struct snap_item *items,
			  size_t *ret_n, struct pk_error *err)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "snapshot.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t n = 0;
	int r = 0;

	if (!root || strcmp((const char *)root->name, "domainsnapshot") != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "XML error: not a <domainsnapshot>");
		goto out;
	}
	for (xmlNodePtr disks = root->children; disks; disks = disks->next) {
		if (disks->type != XML_ELEMENT_NODE || strcmp((const char *)disks->name, "disks")) {
			continue;
		}
		for (xmlNodePtr e = disks->children; e && r == 0; e = e->next) {
			xmlChar *name, *mode, *path = NULL;
			struct disk *k;

			if (e->type != XML_ELEMENT_NODE || strcmp((const char *)e->name, "disk")) {
				continue;
			}
			name = xmlGetProp(e, BAD_CAST "name");
			mode = xmlGetProp(e, BAD_CAST "snapshot");
			k = fake_virtd_find_disk(d, (const char *)name);
			if (!k) {
				r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						 "invalid argument: no disk named '%s'",
						 name ? (const char *)name : "");
			} else if (mode && strcmp((const char *)mode, "external") == 0) {
				bool block = false;

				for (xmlNodePtr s = e->children; s; s = s->next) {
					if (s->type == XML_ELEMENT_NODE &&
					    strcmp((const char *)s->name, "source") == 0) {
						path = xmlGetProp(s, BAD_CAST "file");
						if (!path) {
							path = xmlGetProp(s, BAD_CAST "dev");
							block = true;
						}
					}
				}
				if (!path) {
					r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
							 "disk '%s' has no snapshot source",
							 k->target);
				} else if (k->job.on) {
					r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
							 "Requested operation is not valid: disk "
							 "'%s' has an active block job", k->target);
				} else if (n < HSM_VM_DISKS_MAX) {
					items[n].disk = k;
					items[n].path = pk_xstrdup((const char *)path);
					items[n].block = block;
					n++;
				}
			}
			xmlFree(name);
			xmlFree(mode);
			xmlFree(path);
		}
	}
out:
	if (doc) {
		xmlFreeDoc(doc);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++) {
			free(items[i].path);
		}
		return r;
	}
	*ret_n = n;
	return 0;
}

int hsm_virt_snapshot(struct hsm_virt *v, const char *name, const char *snapshot_xml,
		      bool quiesce, struct pk_error *err)
{
	struct snap_item items[HSM_VM_DISKS_MAX];
	struct domain *d = NULL;
	size_t n = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_SNAPSHOT, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && !snapshot_xml) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no snapshot XML");
	}
	if (r == 0 && quiesce && (!d->agent || d->state == HSM_VIRT_STATE_SHUTOFF)) {
		r = pk_error_set(err, PK_E_UNAVAILABLE, EAGAIN,
				 "cannot snapshot VM '%s' quiesced: the qemu guest agent does "
				 "not answer: Guest agent is not responding: QEMU guest agent "
				 "is not connected", name);
	}
	if (r == 0) {
		r = snapshot_items(d, snapshot_xml, items, &n, err);
	}
	if (r == 0 && n == 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "unsupported configuration: nothing selected for snapshot");
	}
	if (r == 0) {
		/* Atomic: every overlay becomes a leaf, after all were checked. */
		for (size_t i = 0; i < n; i++) {
			struct disk *k = items[i].disk;

			k->layers = pk_xrealloc(k->layers, (k->n + 1) * sizeof(*k->layers));
			memmove(&k->layers[1], &k->layers[0], k->n * sizeof(*k->layers));
			k->layers[0].path = items[i].path;
			k->layers[0].format = HSM_DISK_FORMAT_QCOW2;
			k->layers[0].block = items[i].block;
			k->layers[0].index =
				d->state == HSM_VIRT_STATE_SHUTOFF ? -1 : d->next_index++;
			k->n++;
		}
		fake_virtd_record(FAKE_VIRT_SNAPSHOT, name, NULL, NULL, NULL, quiesce, 0);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

static int start_job(struct disk *k, const char *name, const char *disk, struct pk_error *err)
{
	(void)name;
	if (k->job.on) {
		return pk_error_set(err, PK_E_CONFLICT, EBUSY,
				    "block copy still active: disk '%s' already in active block "
				    "job", disk);
	}
	memset(&k->job, 0, sizeof(k->job));
	k->job.on = true;
	k->job.end = 100;
	return 0;
}

int hsm_virt_block_commit(struct hsm_virt *v, const char *name, const char *disk,
			  const char *base, const char *top, bool active,
			  uint64_t bandwidth, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int bpos, tpos;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_COMMIT, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r < 0) {
		goto out;
	}
	bpos = resolve_ref(k, base);
	tpos = top ? resolve_ref(k, top) : (active ? 0 : -1);
	if (bpos < 0 || tpos < 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "invalid argument: could not find image '%s' in chain of '%s'",
				 bpos < 0 ? (base ? base : "") : (top ? top : ""), disk);
	} else if (tpos >= bpos) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "invalid argument: base '%s' is not below top", base);
	} else if (active != (tpos == 0)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 active ? "invalid argument: active commit requested but '%s' "
					  "is not active"
					: "invalid argument: commit of '%s' active layer requires "
					  "active flag",
				 disk);
	} else {
		r = start_job(k, name, disk, err);
	}
	if (r == 0) {
		k->job.type = active ? HSM_VIRT_JOB_ACTIVE_COMMIT : HSM_VIRT_JOB_COMMIT;
		k->job.base_index = k->layers[bpos].index;
		k->job.top_index = k->layers[tpos].index;
		k->job.bandwidth = bandwidth;
		k->job.mirror = active ? HSM_VMXML_MIRROR_SYNCING : HSM_VMXML_MIRROR_NONE;
		fake_virtd_record(FAKE_VIRT_COMMIT, name, disk, base, top, active, bandwidth);
	}
out:
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_block_pull(struct hsm_virt *v, const char *name, const char *disk,
			const char *base, uint64_t bandwidth, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int bpos = -1;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_PULL, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0 && base) {
		bpos = resolve_ref(k, base);
		if (bpos < 1) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "invalid argument: could not find base image '%s' below "
					 "the top of '%s'", base, disk);
		}
	}
	if (r == 0) {
		r = start_job(k, name, disk, err);
	}
	if (r == 0) {
		k->job.type = HSM_VIRT_JOB_PULL;
		k->job.base_index = bpos >= 0 ? k->layers[bpos].index : -1;
		k->job.bandwidth = bandwidth;
		fake_virtd_record(FAKE_VIRT_PULL, name, disk, base, NULL, false, bandwidth);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_block_job_info(struct hsm_virt *v, const char *name, const char *disk,
			    struct hsm_virt_job_info *ret, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_JOB_INFO, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0) {
		fake_virtd_guest_advance(d, k);
		memset(ret, 0, sizeof(*ret));
		ret->active = k->job.on && !k->job.hidden;
		if (k->job.on) {
			ret->type = k->job.type;
			ret->cur = k->job.cur;
			ret->end = k->job.end;
			ret->bandwidth = k->job.bandwidth;
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_block_job_abort(struct hsm_virt *v, const char *name, const char *disk,
			     bool pivot, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_JOB_ABORT, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0 && !k->job.on) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ESRCH,
				 "invalid argument: disk %s does not have an active block job",
				 disk);
	}
	if (r == 0 && pivot && k->job.mirror != HSM_VMXML_MIRROR_READY) {
		r = pk_error_set(err, PK_E_CONFLICT, EAGAIN,
				 "block copy still active: disk '%s' not ready for pivot yet", disk);
	}
	if (r == 0) {
		fake_virtd_record(FAKE_VIRT_JOB_ABORT, name, disk, NULL, NULL, pivot, 0);
		if (pivot && fake_virtd.manual_pivot) {
			k->job.mirror = HSM_VMXML_MIRROR_PIVOTING;
		} else if (pivot) {
			fake_virtd_apply_job(k);
			fake_virtd_end_job(d, k, HSM_VIRT_JOB_COMPLETED);
		} else {
			fake_virtd_end_job(d, k, HSM_VIRT_JOB_CANCELED);
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_block_job_set_bandwidth(struct hsm_virt *v, const char *name,
				     const char *disk, uint64_t bandwidth,
				     struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_JOB_SET_BANDWIDTH, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0 && !k->job.on) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ESRCH,
				 "invalid argument: disk %s does not have an active block job",
				 disk);
	}
	if (r == 0) {
		fake_virtd_guest_advance(d, k); /* the time so far at the old limit */
		k->job.bandwidth = bandwidth;
		fake_virtd_record(FAKE_VIRT_JOB_SET_BANDWIDTH, name, disk, NULL, NULL, false,
				  bandwidth);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

/* ---- the guest's writes ------------------------------------------------------------------ */

void fake_virtd_guest_advance(const struct domain *d, struct disk *k)
{
	uint64_t now = pk_clock_monotonic_ms(), ms = now - k->guest_ms;
	uint64_t w, dirt, copy;
	struct job *j = &k->job;

	if (!k->guest_rate || !ms || d->state == HSM_VIRT_STATE_SHUTOFF) {
		k->guest_ms = now;
		return;
	}
	k->guest_ms = now;
	w = k->guest_rate * ms / 1000;
	k->written += w;
	if (!j->on || j->type != HSM_VIRT_JOB_ACTIVE_COMMIT || j->mirror != HSM_VMXML_MIRROR_SYNCING) {
		return;
	}
	/* qemu: end = offset + dirt; the guest dirties, the mirror copies. */
	dirt = (j->end > j->cur ? j->end - j->cur : 0) + w;
	if (k->guest_region && dirt > k->guest_region) {
		dirt = k->guest_region;
	}
	copy = j->bandwidth ? j->bandwidth * ms / 1000 : dirt;
	if (copy > dirt) {
		copy = dirt;
	}
	j->cur += copy;
	j->end = j->cur + dirt - copy;
	if (j->end == j->cur) {
		j->mirror = HSM_VMXML_MIRROR_READY;
		fake_virtd_queue_event(EV_JOB, d->name, k->target, (int)j->type,
				       HSM_VIRT_JOB_READY);
	}
}

int fake_virt_guest_writes(const char *name, const char *disk, uint64_t rate, uint64_t region)
{
	struct domain *d;
	struct disk *k = NULL;

	pthread_mutex_lock(&fake_virtd.lock);
	d = fake_virtd_find_dom(name);
	if (d) {
		k = fake_virtd_find_disk(d, disk);
	}
	if (k) {
		fake_virtd_guest_advance(d, k);
		k->guest_rate = rate;
		k->guest_region = region;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return k ? 0 : -ENOENT;
}

int hsm_virt_block_written(struct hsm_virt *v, const char *name, const char *disk,
			   uint64_t *ret_bytes, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_BLOCK_STATS, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0) {
		fake_virtd_guest_advance(d, k);
		*ret_bytes = k->written;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}
