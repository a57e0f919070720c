/* fake_virt: block thresholds, block info and resume (see fake_virt.h). */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "tests/fakes/fake_virt_state.h"

/* "vda[3]" -> "vda" in buf. */
static const char *dev_target(const char *dev, char *buf, size_t size)
{
	size_t n = strcspn(dev ? dev : "", "[");

	if (n >= size) {
		n = size - 1;
	}
	memcpy(buf, dev ? dev : "", n);
	buf[n] = '\0';
	return buf;
}

static int get_disk(enum fake_virt_op op, const char *name, const char *dev, bool running,
		    struct domain **ret_dom, struct disk **ret_disk, struct pk_error *err)
{
	char t[HSM_VMXML_TARGET_MAX];
	struct domain *d = NULL;
	struct disk *k;
	int r = fake_virtd_begin(op, err);

	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r < 0) {
		return r;
	}
	k = fake_virtd_find_disk(d, dev_target(dev, t, sizeof(t)));
	if (!k) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "invalid argument: disk '%s' not found in domain", t);
	}
	if (running && d->state == HSM_VIRT_STATE_SHUTOFF) {
		return pk_error_set(err, PK_E_CONFLICT, EALREADY,
				    "Requested operation is not valid: domain is not running");
	}
	*ret_dom = d;
	*ret_disk = k;
	return 0;
}

int hsm_virt_block_threshold_set(struct hsm_virt *v, const char *name, const char *dev,
				 uint64_t threshold, struct pk_error *err)
{
	struct domain *d;
	struct disk *k;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = get_disk(FAKE_VIRT_THRESHOLD, name, dev, true, &d, &k, err);
	if (r == 0) {
		k->threshold = threshold;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_block_info(struct hsm_virt *v, const char *name, const char *dev,
			uint64_t *ret_capacity, uint64_t *ret_allocation,
			uint64_t *ret_physical, struct pk_error *err)
{
	struct domain *d;
	struct disk *k;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = get_disk(FAKE_VIRT_BLOCK_INFO, name, dev, false, &d, &k, err);
	if (r == 0) {
		*ret_capacity = k->physical;
		*ret_allocation = k->allocation;
		*ret_physical = k->physical;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_domain_resume(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_RESUME, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && d->state != HSM_VIRT_STATE_PAUSED) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY,
				 "Requested operation is not valid: domain is not paused");
	}
	if (r == 0) {
		d->state = HSM_VIRT_STATE_RUNNING;
		d->disk_error = 0;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

void fake_virt_block_set(const char *vm, const char *target, uint64_t allocation,
			 uint64_t physical)
{
	struct domain *d;
	struct disk *k;

	pthread_mutex_lock(&fake_virtd.lock);
	if ((d = fake_virtd_find_dom(vm)) && (k = fake_virtd_find_disk(d, target))) {
		k->allocation = allocation;
		k->physical = physical;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

uint64_t fake_virt_block_threshold(const char *vm, const char *target)
{
	struct domain *d;
	struct disk *k;
	uint64_t t = 0;

	pthread_mutex_lock(&fake_virtd.lock);
	if ((d = fake_virtd_find_dom(vm)) && (k = fake_virtd_find_disk(d, target))) {
		t = k->threshold;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return t;
}

void fake_virt_pause(const char *vm)
{
	struct domain *d;

	pthread_mutex_lock(&fake_virtd.lock);
	if ((d = fake_virtd_find_dom(vm)) && d->state == HSM_VIRT_STATE_RUNNING) {
		d->state = HSM_VIRT_STATE_PAUSED;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

void fake_virt_pause_io(const char *vm, bool nospace)
{
	struct domain *d;

	pthread_mutex_lock(&fake_virtd.lock);
	if ((d = fake_virtd_find_dom(vm)) && d->state == HSM_VIRT_STATE_RUNNING) {
		d->state = HSM_VIRT_STATE_PAUSED;
		d->disk_error = nospace ? 1 : 2;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

void hsm_virt_nodes_free(struct hsm_virt_node *nodes, size_t n)
{
	for (size_t i = 0; nodes && i < n; i++) {
		free(nodes[i].path);
	}
	free(nodes);
}

/* One node per layer; the leaf carries the disk's block info and threshold. */
int hsm_virt_block_stats(struct hsm_virt *v, const char *name, struct hsm_virt_node **ret,
			 size_t *ret_n, struct pk_error *err)
{
	struct hsm_virt_node *nodes = NULL;
	struct domain *d = NULL;
	size_t n = 0, total = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_NODE_STATS, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && d->state == HSM_VIRT_STATE_SHUTOFF) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY, "VM '%s' does not run", name);
	}
	if (r == 0) {
		for (size_t i = 0; i < d->ndisks; i++) {
			total += d->disks[i].n;
		}
		nodes = pk_xcalloc(total ? total : 1, sizeof(*nodes));
		for (size_t i = 0; i < d->ndisks; i++) {
			const struct disk *k = &d->disks[i];

			for (size_t j = 0; j < k->n; j++, n++) {
				struct hsm_virt_node *x = &nodes[n];

				snprintf(x->target, sizeof(x->target), "%s", k->target);
				x->index = k->layers[j].index;
				x->depth = (unsigned)j;
				x->path = pk_xstrdup(k->layers[j].path);
				if (j == 0) {
					x->allocation = k->allocation;
					x->physical = x->capacity = k->physical;
					x->threshold = k->threshold;
				}
			}
		}
		*ret = nodes;
		*ret_n = n;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_disk_errors(struct hsm_virt *v, const char *name, bool *ret_nospace,
			 bool *ret_other, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_DISK_ERRORS, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0) {
		*ret_nospace = d->disk_error == 1;
		*ret_other = d->disk_error == 2;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}
