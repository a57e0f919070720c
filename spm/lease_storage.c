/*
 * The storage-only verbs of spm/lease.h: formatting the lockspace and the
 * SDM resource of a new domain, and reading the lease owner. They need the
 * sanlock daemon but no lockspace membership and no struct spm_lease.
 */
#include "spm/lease.h"

#include <errno.h>
#include <stdlib.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_rv.h>

#include "spm/lease_internal.h"

int spm_lease_format_lockspace(const struct spm_lease_config *cfg, struct pk_error *err)
{
	struct sanlk_lockspace ls;
	int r;

	r = spm_lease_config_check_storage(cfg, true, false, err);
	if (r < 0) {
		return r;
	}
	spm_lease_run_dir_apply(cfg->sanlock_run_dir);
	spm_lease_fill_lockspace(&ls, cfg->lockspace, 0, cfg->ids_path);
	r = sanlock_write_lockspace(&ls, 0, 0, cfg->io_timeout);
	if (r < 0) {
		return spm_lease_sanlock_failed(spm_lease_run_dir_name(cfg->sanlock_run_dir), r,
						"writing the sanlock lockspace", cfg->ids_path,
						err);
	}
	return 0;
}

int spm_lease_format_resource(const struct spm_lease_config *cfg, struct pk_error *err)
{
	struct spm_lease_one_disk_resource res;
	int r;

	r = spm_lease_config_check_storage(cfg, false, true, err);
	if (r < 0) {
		return r;
	}
	spm_lease_run_dir_apply(cfg->sanlock_run_dir);
	spm_lease_fill_resource(&res, cfg->lockspace, cfg->leases_path);
	r = sanlock_write_resource(&res.u.res, 0, 0, 0);
	if (r < 0) {
		return spm_lease_sanlock_failed(spm_lease_run_dir_name(cfg->sanlock_run_dir), r,
						"writing the SPM lease", cfg->leases_path, err);
	}
	return 0;
}

int spm_lease_read_owner_at(const char *run_dir, const char *lockspace,
			    const char *leases_path, struct spm_lease_owner *ret_owner,
			    struct pk_error *err)
{
	struct spm_lease_one_disk_resource res;
	struct sanlk_host *hosts = NULL;
	int count = 0;
	int r;

	spm_lease_fill_resource(&res, lockspace, leases_path);
	r = sanlock_read_resource_owners(&res.u.res, 0, &hosts, &count);
	if (r == -EINVAL) {
		/* sanlock's answer when the area has no lease (sector size 0). */
		r = SANLK_LEADER_MAGIC;
	}
	if (r < 0) {
		free(hosts);
		return spm_lease_sanlock_failed(run_dir, r, "reading the SPM lease owner",
						leases_path, err);
	}
	ret_owner->host_id = 0;
	ret_owner->generation = 0;
	if (hosts && count > 0) {
		ret_owner->host_id = hosts[0].host_id;
		ret_owner->generation = hosts[0].generation;
	}
	free(hosts);
	return 0;
}

int spm_lease_read_owner(const struct spm_lease_config *cfg,
			 struct spm_lease_owner *ret_owner, struct pk_error *err)
{
	int r;

	r = spm_lease_config_check_storage(cfg, false, true, err);
	if (r < 0) {
		return r;
	}
	spm_lease_run_dir_apply(cfg->sanlock_run_dir);
	return spm_lease_read_owner_at(spm_lease_run_dir_name(cfg->sanlock_run_dir),
				       cfg->lockspace, cfg->leases_path, ret_owner, err);
}
