/* hsm_virt: block thresholds, block info and resume (see virt.h). */
#include "hsm/virt.h"

#include <errno.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hsm/virt_internal.h"

int hsm_virt_block_threshold_set(struct hsm_virt *v, const char *name, const char *dev,
				 uint64_t threshold, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r = hsm_virt_disk_dom_get(v, name, dev, &c, &d, err);

	if (r < 0) {
		return r;
	}
	if (virDomainSetBlockThreshold(d, dev, threshold, 0) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot set the block threshold of VM '%s' disk '%s'",
				  name, dev);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_info(struct hsm_virt *v, const char *name, const char *dev,
			uint64_t *ret_capacity, uint64_t *ret_allocation,
			uint64_t *ret_physical, struct pk_error *err)
{
	virDomainBlockInfo info;
	virConnectPtr c;
	virDomainPtr d;
	int r = hsm_virt_disk_dom_get(v, name, dev, &c, &d, err);

	if (r < 0) {
		return r;
	}
	memset(&info, 0, sizeof(info));
	if (virDomainGetBlockInfo(d, dev, &info, 0) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the block info of VM '%s' disk '%s'", name,
				  dev);
	} else {
		*ret_capacity = info.capacity;
		*ret_allocation = info.allocation;
		*ret_physical = info.physical;
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_domain_resume(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r = hsm_virt_dom_get(v, name, &c, &d, err);

	if (r < 0) {
		return r;
	}
	if (virDomainResume(d) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot resume VM '%s'", name);
	}
	hsm_virt_dom_put(c, d);
	return r;
}
