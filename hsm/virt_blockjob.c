/*
 * The snapshot and block job verbs of hsm/virt.h: an atomic disk-only
 * snapshot, block commit and pull, and the info, abort (or pivot) and
 * bandwidth of a disk's running job.
 */
#include "hsm/virt.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hsm/virt_internal.h"

int hsm_virt_snapshot(struct hsm_virt *v, const char *name, const char *snapshot_xml,
		      bool quiesce, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
			 VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
			 VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
			 VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
	virDomainSnapshotPtr snap;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	if (!snapshot_xml) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no snapshot XML");
	}
	if (quiesce) {
		flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
	}
	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	snap = virDomainSnapshotCreateXML(d, snapshot_xml, flags);
	if (!snap) {
		int code = hsm_virt_last_error_code();

		if (quiesce && (code == VIR_ERR_AGENT_UNRESPONSIVE ||
				code == VIR_ERR_AGENT_UNSYNCED)) {
			r = hsm_virt_fail(v, c, err,
					  "cannot snapshot VM '%s' quiesced: the qemu guest agent "
					  "does not answer (install and start qemu-ga in the "
					  "guest, or snapshot without quiesce)", name);
		} else {
			r = hsm_virt_fail(v, c, err, "cannot snapshot VM '%s'%s", name,
					  quiesce ? " (quiesced)" : "");
		}
	} else {
		virDomainSnapshotFree(snap);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

static int check_bandwidth(uint64_t bandwidth, struct pk_error *err)
{
	if (bandwidth > (uint64_t)(unsigned long)-1) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "bandwidth %" PRIu64 " bytes/s is too large", bandwidth);
	}
	return 0;
}

/*
 * Gives block job failures the code the caller can act on, by asking
 * libvirt whether the disk has a job (right after the failed call):
 *  - starting a job: libvirt refuses a second one with
 *    OPERATION_UNSUPPORTED ("already in active block job") -> CONFLICT;
 *  - acting on the job (abort, pivot, speed): libvirt says INVALID_ARG
 *    ("does not have an active block job") -> NOT_FOUND: the job is gone,
 *    perhaps finished; the caller decides from the live XML.
 */
static void fix_job_error(virDomainPtr d, const char *disk, bool starting,
			  struct pk_error *err)
{
	virDomainBlockJobInfo info;
	int has;

	if (!err || (err->code != PK_E_UNSUPPORTED && err->code != PK_E_INVALID_ARGUMENT)) {
		return;
	}
	has = virDomainGetBlockJobInfo(d, disk, &info, 0);
	if (starting && has == 1 && err->code == PK_E_UNSUPPORTED) {
		err->code = PK_E_CONFLICT;
	} else if (!starting && has == 0) {
		err->code = PK_E_NOT_FOUND;
	}
	virResetLastError();
}

int hsm_virt_block_commit(struct hsm_virt *v, const char *name, const char *disk,
			  const char *base, const char *top, bool active,
			  uint64_t bandwidth, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_COMMIT_RELATIVE |
			 VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_check_arg("disk", disk, err);
	if (r == 0) {
		r = hsm_virt_check_arg("commit base", base, err);
	}
	if (r == 0 && (top || !active)) {
		r = hsm_virt_check_arg("commit top", top, err);
	}
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	if (active) {
		flags |= VIR_DOMAIN_BLOCK_COMMIT_ACTIVE;
	}
	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockCommit(d, disk, base, top, (unsigned long)bandwidth, flags) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot start %scommit of VM '%s' disk '%s' "
				  "(base '%s', top '%s')", active ? "active " : "", name, disk, base,
				  top ? top : "leaf");
		fix_job_error(d, disk, true, err);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_pull(struct hsm_virt *v, const char *name, const char *disk,
			const char *base, uint64_t bandwidth, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_check_arg("disk", disk, err);
	if (r == 0 && base) {
		r = hsm_virt_check_arg("pull base", base, err);
	}
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	/* libvirt accepts RELATIVE only with a base. */
	if (base) {
		flags |= VIR_DOMAIN_BLOCK_REBASE_RELATIVE;
	}
	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockRebase(d, disk, base, (unsigned long)bandwidth, flags) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot start pull of VM '%s' disk '%s' (base '%s')",
				  name, disk, base ? base : "none");
		fix_job_error(d, disk, true, err);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_job_info(struct hsm_virt *v, const char *name, const char *disk,
			    struct hsm_virt_job_info *ret, struct pk_error *err)
{
	virDomainBlockJobInfo info;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_disk_dom_get(v, name, disk, &c, &d, err);
	if (r < 0) {
		return r;
	}
	memset(&info, 0, sizeof(info));
	r = virDomainGetBlockJobInfo(d, disk, &info, VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES);
	if (r < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the block job of VM '%s' disk '%s'", name,
				  disk);
	} else {
		memset(ret, 0, sizeof(*ret));
		ret->active = r == 1;
		if (ret->active) {
			ret->type = (enum hsm_virt_job_type)info.type;
			ret->cur = info.cur;
			ret->end = info.end;
			ret->bandwidth = info.bandwidth;
		}
		r = 0;
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_job_abort(struct hsm_virt *v, const char *name, const char *disk,
			     bool pivot, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC |
			 (pivot ? VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT : 0);
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_disk_dom_get(v, name, disk, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockJobAbort(d, disk, flags) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot %s the block job of VM '%s' disk '%s'",
				  pivot ? "pivot" : "abort", name, disk);
		fix_job_error(d, disk, false, err);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_job_set_bandwidth(struct hsm_virt *v, const char *name,
				     const char *disk, uint64_t bandwidth,
				     struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_check_arg("disk", disk, err);
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockJobSetSpeed(d, disk, (unsigned long)bandwidth,
				      VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot set the bandwidth of VM '%s' disk '%s'", name,
				  disk);
		fix_job_error(d, disk, false, err);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_block_written(struct hsm_virt *v, const char *name, const char *disk,
			   uint64_t *ret_bytes, struct pk_error *err)
{
	virDomainBlockStatsStruct st;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_disk_dom_get(v, name, disk, &c, &d, err);
	if (r < 0) {
		return r;
	}
	memset(&st, 0, sizeof(st));
	if (virDomainBlockStats(d, disk, &st, sizeof(st)) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the block stats of VM '%s' disk '%s'", name,
				  disk);
	} else if (st.wr_bytes < 0) {
		r = pk_error_set(err, PK_E_UNSUPPORTED, ENOTSUP,
				 "qemu does not count the bytes written to VM '%s' disk '%s'", name,
				 disk);
	} else {
		*ret_bytes = (uint64_t)st.wr_bytes;
	}
	hsm_virt_dom_put(c, d);
	return r;
}
