/* hsm_virt: block thresholds, block info and resume (see virt.h). */
#include "hsm/virt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/xalloc.h"
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

void hsm_virt_nodes_free(struct hsm_virt_node *nodes, size_t n)
{
	for (size_t i = 0; nodes && i < n; i++) {
		free(nodes[i].path);
	}
	free(nodes);
}

/* The typed parameter "block.<i>.<field>" of one record, or NULL. */
static virTypedParameterPtr stat_param(virDomainStatsRecordPtr rec, size_t i, const char *field)
{
	char key[VIR_TYPED_PARAM_FIELD_LENGTH];

	snprintf(key, sizeof(key), "block.%zu.%s", i, field);
	for (int k = 0; k < rec->nparams; k++) {
		if (!strcmp(rec->params[k].field, key)) {
			return &rec->params[k];
		}
	}
	return NULL;
}

static uint64_t stat_u64(virDomainStatsRecordPtr rec, size_t i, const char *field)
{
	virTypedParameterPtr p = stat_param(rec, i, field);

	if (!p) {
		return 0;
	}
	switch (p->type) {
	case VIR_TYPED_PARAM_ULLONG:
		return p->value.ul;
	case VIR_TYPED_PARAM_LLONG:
		return p->value.l < 0 ? 0 : (uint64_t)p->value.l;
	case VIR_TYPED_PARAM_UINT:
		return p->value.ui;
	case VIR_TYPED_PARAM_INT:
		return p->value.i < 0 ? 0 : (uint64_t)p->value.i;
	default:
		return 0;
	}
}

static const char *stat_str(virDomainStatsRecordPtr rec, size_t i, const char *field)
{
	virTypedParameterPtr p = stat_param(rec, i, field);

	return p && p->type == VIR_TYPED_PARAM_STRING ? p->value.s : NULL;
}

int hsm_virt_block_stats(struct hsm_virt *v, const char *name, struct hsm_virt_node **ret,
			 size_t *ret_n, struct pk_error *err)
{
	virDomainStatsRecordPtr *recs = NULL;
	virDomainPtr doms[2] = { NULL, NULL };
	struct hsm_virt_node *nodes = NULL;
	virConnectPtr c;
	size_t n = 0, count;
	int r = hsm_virt_dom_get(v, name, &c, &doms[0], err);

	if (r < 0) {
		return r;
	}
	if (virDomainIsActive(doms[0]) == 0) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY, "VM '%s' does not run", name);
		goto out;
	}
	if (virDomainListGetStats(doms, VIR_DOMAIN_STATS_BLOCK,
				  &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the block statistics of VM '%s'", name);
		goto out;
	}
	if (!recs || !recs[0]) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY, "VM '%s' does not run", name);
		goto out;
	}
	{
		/* "block.count" has no index: look it up by its own name. */
		virTypedParameterPtr p = NULL;

		for (int k = 0; k < recs[0]->nparams; k++) {
			if (!strcmp(recs[0]->params[k].field, "block.count")) {
				p = &recs[0]->params[k];
			}
		}
		count = p && p->type == VIR_TYPED_PARAM_UINT ? p->value.ui : 0;
	}
	nodes = pk_xcalloc(count ? count : 1, sizeof(*nodes));
	for (size_t i = 0; i < count; i++) {
		const char *target = stat_str(recs[0], i, "name");
		virTypedParameterPtr bi = stat_param(recs[0], i, "backingIndex");
		const char *path = stat_str(recs[0], i, "path");
		struct hsm_virt_node *x = &nodes[n];

		if (!target) {
			continue;
		}
		snprintf(x->target, sizeof(x->target), "%s", target);
		x->index = bi && bi->type == VIR_TYPED_PARAM_UINT ? (int)bi->value.ui : -1;
		x->depth = n > 0 && !strcmp(nodes[n - 1].target, x->target) ? nodes[n - 1].depth + 1 : 0;
		x->path = path ? pk_xstrdup(path) : NULL;
		x->allocation = stat_u64(recs[0], i, "allocation");
		x->capacity = stat_u64(recs[0], i, "capacity");
		x->physical = stat_u64(recs[0], i, "physical");
		x->threshold = stat_u64(recs[0], i, "threshold");
		n++;
	}
	*ret = nodes;
	*ret_n = n;
	nodes = NULL;
out:
	if (recs) {
		virDomainStatsRecordListFree(recs);
	}
	hsm_virt_nodes_free(nodes, n);
	hsm_virt_dom_put(c, doms[0]);
	return r;
}

int hsm_virt_disk_errors(struct hsm_virt *v, const char *name, bool *ret_nospace,
			 bool *ret_other, struct pk_error *err)
{
	virDomainDiskError errs[HSM_VM_DISKS_MAX];
	virConnectPtr c;
	virDomainPtr d;
	bool nospace = false, other = false;
	int n, r = hsm_virt_dom_get(v, name, &c, &d, err);

	if (r < 0) {
		return r;
	}
	n = virDomainGetDiskErrors(d, errs, HSM_VM_DISKS_MAX, 0);
	if (n < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the disk errors of VM '%s'", name);
	}
	for (int i = 0; i < n; i++) {
		if (errs[i].error == VIR_DOMAIN_DISK_ERROR_NO_SPACE) {
			nospace = true;
		} else if (errs[i].error != VIR_DOMAIN_DISK_ERROR_NONE) {
			other = true;
		}
		free(errs[i].disk);
	}
	if (r == 0) {
		*ret_nospace = nospace;
		*ret_other = other;
	}
	hsm_virt_dom_put(c, d);
	return r;
}
