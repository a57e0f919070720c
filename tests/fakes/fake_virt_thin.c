/* fake_virt: block thresholds, block info and resume (see fake_virt.h). */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

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
