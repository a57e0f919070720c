/*
 * The steps of pk-virt-probe: the contract is tests/lib/virt_probe_steps.h.
 */
#include "tests/lib/virt_probe_steps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/strv.h"
#include "common/xalloc.h"

/* A step's "SECONDS" argument (a decimal fraction) in milliseconds. */
static unsigned seconds_ms(const char *arg)
{
	double s = atof(arg);

	return s > 0 ? (unsigned)(s * 1000) : 0;
}

/* ---- helpers -------------------------------------------------------------- */

int virt_probe_fail(struct pk_error *err, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = pk_error_setv(err, PK_E_INVALID_ARGUMENT, EINVAL, fmt, ap);
	va_end(ap);
	return r;
}

static int live(struct probe *p, const char *vm, struct hsm_vmxml_domain *dom,
		struct pk_error *err)
{
	_cleanup_free_ char *xml = NULL;
	int r;

	r = hsm_virt_domain_xml(p->virt, vm, &xml, err);
	if (r < 0) {
		return r;
	}
	return hsm_vmxml_domain_parse(xml, dom, err);
}

static void print_disk(const struct hsm_vmxml_disk *d)
{
	printf("   %s:", d->target);
	for (size_t i = 0; i < d->nlayers; i++) {
		printf(" %s[%d]%s", i ? "<- " : "", d->layers[i].index, d->layers[i].path);
	}
	printf("%s", d->chain_complete ? "" : " ...");
	if (d->mirror != HSM_VMXML_MIRROR_NONE) {
		printf("  mirror=%s -> %s", hsm_vmxml_mirror_name(d->mirror),
		       d->mirror_dest.path ? d->mirror_dest.path : "?");
	}
	printf("\n");
}

/* Resolves a path of disk's live chain to "vda[N]". */
static int ref_of(struct probe *p, const char *vm, const char *disk, const char *path,
		  char *buf, size_t len, struct pk_error *err)
{
	struct hsm_vmxml_domain dom;
	const struct hsm_vmxml_disk *d;
	int r, pos;

	r = live(p, vm, &dom, err);
	if (r < 0) {
		return r;
	}
	d = hsm_vmxml_domain_disk(&dom, disk);
	if (!d) {
		r = virt_probe_fail(err, "VM '%s' has no disk '%s'", vm, disk);
		goto out;
	}
	pos = hsm_vmxml_disk_find_path(d, path);
	if (pos < 0) {
		r = virt_probe_fail(err, "'%s' is not in the chain of %s", path, disk);
		goto out;
	}
	r = hsm_vmxml_disk_layer_ref(d, (size_t)pos, buf, len, err);
out:
	hsm_vmxml_domain_release(&dom);
	return r;
}

static uint64_t opt_bw(char **w, int n, int i)
{
	return i < n ? strtoull(w[i], NULL, 10) : 0;
}

static const char *fake_uuid(unsigned kind, unsigned n, char buf[PK_UUID_BUFLEN])
{
	snprintf(buf, PK_UUID_BUFLEN, "%08x-0000-4000-8000-%012x", kind, n);
	return buf;
}

/* ---- commands --------------------------------------------------------------------- */

int virt_probe_cmd_build_create(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_vm_disk disks[16];
	struct hsm_vm_spec spec = { 0 };
	_cleanup_free_ char *xml = NULL;
	char uuid[PK_UUID_BUFLEN];
	int nd = 0;
	int r;

	if (n < 5) {
		return virt_probe_fail(err, "usage: build-create VM TYPE MEM SERIAL T=PATH[:FMT]...");
	}
	spec.name = w[1];
	spec.type = strcmp(w[2], "kvm") == 0 ? HSM_VM_TYPE_KVM : HSM_VM_TYPE_QEMU;
	spec.memory_mib = (unsigned)strtoul(w[3], NULL, 10);
	spec.vcpus = 1;
	spec.serial_log = strcmp(w[4], "-") == 0 ? NULL : w[4];
	for (int i = 5; i < n && nd < 16; i++, nd++) {
		char *eq = strchr(w[i], '=');
		char *colon;

		memset(&disks[nd], 0, sizeof(disks[nd]));
		if (!eq) {
			return virt_probe_fail(err, "disk '%s' is not T=PATH", w[i]);
		}
		*eq = '\0';
		colon = strchr(eq + 1, ':');
		disks[nd].format = HSM_DISK_FORMAT_QCOW2;
		if (colon) {
			*colon = '\0';
			disks[nd].format = strcmp(colon + 1, "raw") == 0 ? HSM_DISK_FORMAT_RAW
									   : HSM_DISK_FORMAT_QCOW2;
		}
		snprintf(disks[nd].id.target, sizeof(disks[nd].id.target), "%s", w[i]);
		disks[nd].bus = w[i][0] == 's' ? HSM_DISK_BUS_SATA : HSM_DISK_BUS_VIRTIO;
		disks[nd].path = eq + 1;
		fake_uuid(1, 1, disks[nd].id.domain_id);
		fake_uuid(2, (unsigned)nd + 1, disks[nd].id.image_id);
		fake_uuid(3, (unsigned)nd + 1, disks[nd].id.volume_id);
	}
	spec.disks = disks;
	spec.ndisks = (size_t)nd;
	r = hsm_vmxml_domain_build(&spec, &xml, err);
	if (r < 0) {
		return r;
	}
	r = hsm_virt_domain_create(p->virt, xml, uuid, err);
	if (r == 0) {
		printf("   uuid %s\n", uuid);
	}
	return r;
}

int virt_probe_cmd_create(struct probe *p, char **w, int n, struct pk_error *err)
{
	_cleanup_free_ char *xml = NULL;
	char uuid[PK_UUID_BUFLEN];
	size_t len = 0;
	FILE *f;
	int r;

	if (n != 3) {
		return virt_probe_fail(err, "usage: create VM XMLFILE");
	}
	f = fopen(w[2], "r");
	if (!f) {
		return pk_error_set(err, PK_E_IO, errno, "cannot open '%s'", w[2]);
	}
	if (getdelim(&xml, &len, '\0', f) < 0) {
		fclose(f);
		return pk_error_set(err, PK_E_IO, EIO, "cannot read '%s'", w[2]);
	}
	fclose(f);
	r = hsm_virt_domain_create(p->virt, xml, uuid, err);
	if (r == 0) {
		printf("   uuid %s\n", uuid);
	}
	return r;
}

int virt_probe_cmd_show(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_vmxml_domain dom;
	int r;

	if (n != 2) {
		return virt_probe_fail(err, "usage: show VM");
	}
	r = live(p, w[1], &dom, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < dom.ndisks; i++) {
		print_disk(&dom.disks[i]);
	}
	hsm_vmxml_domain_release(&dom);
	return 0;
}

int virt_probe_cmd_dump_xml(struct probe *p, char **w, int n, struct pk_error *err)
{
	_cleanup_free_ char *xml = NULL;
	FILE *f;
	int r;

	if (n != 3) {
		return virt_probe_fail(err, "usage: dump-xml VM FILE");
	}
	r = hsm_virt_domain_xml(p->virt, w[1], &xml, err);
	if (r < 0) {
		return r;
	}
	f = fopen(w[2], "w");
	if (!f || fputs(xml, f) < 0 || fclose(f) != 0) {
		return pk_error_set(err, PK_E_IO, errno, "cannot write '%s'", w[2]);
	}
	return 0;
}

int virt_probe_cmd_expect_chain(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_vmxml_domain dom;
	const struct hsm_vmxml_disk *d;
	int r;

	if (n < 4) {
		return virt_probe_fail(err, "usage: expect-chain VM DISK PATH...");
	}
	r = live(p, w[1], &dom, err);
	if (r < 0) {
		return r;
	}
	d = hsm_vmxml_domain_disk(&dom, w[2]);
	if (!d) {
		r = virt_probe_fail(err, "no disk '%s'", w[2]);
		goto out;
	}
	print_disk(d);
	if (!d->chain_complete) {
		r = virt_probe_fail(err, "the live chain of %s is not complete", w[2]);
		goto out;
	}
	if (d->nlayers != (size_t)(n - 3)) {
		r = virt_probe_fail(err, "%s has %zu layers, expected %d", w[2], d->nlayers, n - 3);
		goto out;
	}
	for (size_t i = 0; i < d->nlayers; i++) {
		if (strcmp(d->layers[i].path, w[3 + i]) != 0) {
			r = virt_probe_fail(err, "%s layer %zu is '%s', expected '%s'", w[2], i,
				 d->layers[i].path, w[3 + i]);
			goto out;
		}
		if (d->layers[i].index < 0) {
			r = virt_probe_fail(err, "%s layer %zu has no index", w[2], i);
			goto out;
		}
	}
out:
	hsm_vmxml_domain_release(&dom);
	return r;
}

int virt_probe_cmd_expect_mirror(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_vmxml_domain dom;
	const struct hsm_vmxml_disk *d;
	int r;

	if (n != 4) {
		return virt_probe_fail(err, "usage: expect-mirror VM DISK STATE");
	}
	r = live(p, w[1], &dom, err);
	if (r < 0) {
		return r;
	}
	d = hsm_vmxml_domain_disk(&dom, w[2]);
	if (!d) {
		r = virt_probe_fail(err, "no disk '%s'", w[2]);
	} else if (strcmp(hsm_vmxml_mirror_name(d->mirror), w[3]) != 0) {
		r = virt_probe_fail(err, "mirror of %s is %s, expected %s", w[2],
			 hsm_vmxml_mirror_name(d->mirror), w[3]);
	} else if (d->mirror != HSM_VMXML_MIRROR_NONE) {
		printf("   mirror %s job=%d dest=%s\n", hsm_vmxml_mirror_name(d->mirror),
		       (int)d->mirror_job, d->mirror_dest.path ? d->mirror_dest.path : "?");
	}
	hsm_vmxml_domain_release(&dom);
	return r;
}

int virt_probe_cmd_expect_state(struct probe *p, char **w, int n, struct pk_error *err)
{
	enum hsm_virt_state st;
	int reason;
	int r;

	if (n != 3) {
		return virt_probe_fail(err, "usage: expect-state VM STATE");
	}
	r = hsm_virt_domain_state(p->virt, w[1], &st, &reason, err);
	if (r < 0) {
		return r;
	}
	if (strcmp(hsm_virt_state_name(st), w[2]) != 0) {
		return virt_probe_fail(err, "state is %s (reason %d), expected %s", hsm_virt_state_name(st),
			    reason, w[2]);
	}
	return 0;
}

int virt_probe_cmd_expect_list(struct probe *p, char **w, int n, struct pk_error *err)
{
	char **names = NULL;
	size_t nn = 0;
	bool found_all = true;
	int r;

	r = hsm_virt_domain_list(p->virt, &names, &nn, err);
	if (r < 0) {
		return r;
	}
	printf("   poolkeeper VMs:");
	for (size_t i = 0; i < nn; i++) {
		printf(" %s", names[i]);
	}
	printf("\n");
	/* Other tests may run VMs in parallel: require ours, ignore theirs. */
	for (int i = 1; i < n; i++) {
		bool found = false;

		for (size_t k = 0; k < nn; k++) {
			found = found || strcmp(names[k], w[i]) == 0;
		}
		found_all = found_all && found;
	}
	pk_strv_free(names);
	return found_all ? 0 : virt_probe_fail(err, "a VM is missing from the list");
}

int virt_probe_cmd_expect_metadata(struct probe *p, char **w, int n, struct pk_error *err)
{
	_cleanup_free_ char *xml = NULL;
	_cleanup_free_ struct hsm_drive_id *drives = NULL;
	size_t nd = 0;
	int r;

	if (n != 4) {
		return virt_probe_fail(err, "usage: expect-metadata VM DISK VOLUME");
	}
	r = hsm_virt_metadata_get(p->virt, w[1], &xml, err);
	if (r == 0) {
		r = hsm_vmxml_metadata_parse(xml, &drives, &nd, err);
	}
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < nd; i++) {
		if (strcmp(drives[i].target, w[2]) == 0) {
			if (strcmp(drives[i].volume_id, w[3]) != 0) {
				return virt_probe_fail(err, "metadata of %s names volume %s, expected %s",
					    w[2], drives[i].volume_id, w[3]);
			}
			return 0;
		}
	}
	return virt_probe_fail(err, "metadata has no drive %s", w[2]);
}

int virt_probe_cmd_set_volume(struct probe *p, char **w, int n, struct pk_error *err)
{
	_cleanup_free_ char *xml = NULL;
	_cleanup_free_ char *out = NULL;
	_cleanup_free_ struct hsm_drive_id *drives = NULL;
	size_t nd = 0;
	int r;

	if (n != 4) {
		return virt_probe_fail(err, "usage: set-volume VM DISK VOLUME");
	}
	r = hsm_virt_metadata_get(p->virt, w[1], &xml, err);
	if (r == 0) {
		r = hsm_vmxml_metadata_parse(xml, &drives, &nd, err);
	}
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < nd; i++) {
		if (strcmp(drives[i].target, w[2]) == 0) {
			snprintf(drives[i].volume_id, sizeof(drives[i].volume_id), "%s", w[3]);
		}
	}
	r = hsm_vmxml_metadata_build(drives, nd, &out, err);
	if (r < 0) {
		return r;
	}
	return hsm_virt_metadata_set(p->virt, w[1], out, err);
}

int virt_probe_cmd_snapshot(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_vmxml_snapshot_disk disks[16];
	struct hsm_vmxml_domain dom;
	_cleanup_free_ char *xml = NULL;
	bool quiesce = false;
	int nd = 0;
	int r;

	if (n < 3) {
		return virt_probe_fail(err, "usage: snapshot VM [quiesce] DISK=PATH...");
	}
	for (int i = 2; i < n && nd < 16; i++) {
		char *eq;

		if (strcmp(w[i], "quiesce") == 0) {
			quiesce = true;
			continue;
		}
		eq = strchr(w[i], '=');
		if (!eq) {
			return virt_probe_fail(err, "'%s' is not DISK=PATH", w[i]);
		}
		*eq = '\0';
		disks[nd].target = w[i];
		disks[nd].path = eq + 1;
		disks[nd].block = false;
		nd++;
	}
	r = live(p, w[1], &dom, err);
	if (r < 0) {
		return r;
	}
	r = hsm_vmxml_snapshot_build(&dom, disks, (size_t)nd, &xml, err);
	hsm_vmxml_domain_release(&dom);
	if (r < 0) {
		return r;
	}
	return hsm_virt_snapshot(p->virt, w[1], xml, quiesce, err);
}

int virt_probe_cmd_commit(struct probe *p, char **w, int n, bool active, struct pk_error *err)
{
	char base[64], top[64];
	int r;

	if (n < (active ? 4 : 5)) {
		return virt_probe_fail(err, "usage: commit VM DISK BASE TOP [BW] | active-commit VM DISK BASE [BW]");
	}
	r = ref_of(p, w[1], w[2], w[3], base, sizeof(base), err);
	if (r == 0 && !active) {
		r = ref_of(p, w[1], w[2], w[4], top, sizeof(top), err);
	}
	if (r < 0) {
		return r;
	}
	printf("   base %s%s%s\n", base, active ? "" : " top ", active ? "" : top);
	return hsm_virt_block_commit(p->virt, w[1], w[2], base, active ? NULL : top, active,
				     opt_bw(w, n, active ? 4 : 5), err);
}

int virt_probe_cmd_pull(struct probe *p, char **w, int n, struct pk_error *err)
{
	char base[64];
	bool none;
	int r;

	if (n < 4) {
		return virt_probe_fail(err, "usage: pull VM DISK BASE|none [BW]");
	}
	none = strcmp(w[3], "none") == 0;
	if (!none) {
		r = ref_of(p, w[1], w[2], w[3], base, sizeof(base), err);
		if (r < 0) {
			return r;
		}
		printf("   base %s\n", base);
	}
	return hsm_virt_block_pull(p->virt, w[1], w[2], none ? NULL : base, opt_bw(w, n, 4),
				   err);
}

int virt_probe_cmd_expect_job(struct probe *p, char **w, int n, struct pk_error *err)
{
	struct hsm_virt_job_info info;
	int r;

	if (n < 4) {
		return virt_probe_fail(err, "usage: expect-job VM DISK none|TYPE [BW]");
	}
	r = hsm_virt_block_job_info(p->virt, w[1], w[2], &info, err);
	if (r < 0) {
		return r;
	}
	if (!info.active) {
		printf("   no job\n");
		return strcmp(w[3], "none") == 0 ? 0 : virt_probe_fail(err, "no job, expected %s", w[3]);
	}
	printf("   job %s cur=%" PRIu64 " end=%" PRIu64 " bandwidth=%" PRIu64 "\n",
	       hsm_virt_job_type_name(info.type), info.cur, info.end, info.bandwidth);
	if (strcmp(hsm_virt_job_type_name(info.type), w[3]) != 0) {
		return virt_probe_fail(err, "job is %s, expected %s", hsm_virt_job_type_name(info.type), w[3]);
	}
	if (n > 4 && info.bandwidth != strtoull(w[4], NULL, 10)) {
		return virt_probe_fail(err, "bandwidth is %" PRIu64 ", expected %s", info.bandwidth, w[4]);
	}
	return 0;
}

int virt_probe_cmd_wait(struct probe *p, char **w, int n, enum ev_kind kind, struct pk_error *err)
{
	struct timespec until;
	int r = 0;

	if ((kind == EV_JOB && n != 5) || (kind == EV_LIFECYCLE && n != 4)) {
		return virt_probe_fail(err, "usage: wait-job VM DISK STATUS SECONDS | wait-lifecycle VM EVENT SECONDS");
	}
	pk_clock_deadline(CLOCK_MONOTONIC, seconds_ms(w[n - 1]), &until);
	pthread_mutex_lock(&p->lock);
	while (true) {
		bool found = false;

		for (size_t i = 0; i < p->nevents && !found; i++) {
			struct event *ev = &p->events[i];

			if (ev->used || ev->kind != kind || strcmp(ev->vm, w[1]) != 0) {
				continue;
			}
			if (kind == EV_JOB && strcmp(ev->disk, w[2]) == 0) {
				ev->used = true;
				if (strcmp(hsm_virt_job_status_name(ev->b), w[3]) != 0) {
					r = virt_probe_fail(err, "block job event %s, expected %s",
						 hsm_virt_job_status_name(ev->b), w[3]);
				}
				found = true;
			} else if (kind == EV_LIFECYCLE &&
				   strcmp(hsm_virt_lifecycle_name(ev->a), w[2]) == 0) {
				ev->used = true;
				found = true;
			}
		}
		if (found) {
			break;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT) {
			r = pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT, "no such event in %s s",
					 w[n - 1]);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

int virt_probe_cmd_wait_conn(struct probe *p, char **w, int n, bool reconnect, struct pk_error *err)
{
	struct timespec until;
	uint64_t end_ms;
	int r = 0;

	if (n != 2) {
		return virt_probe_fail(err, "usage: wait-disconnected|wait-reconnect SECONDS");
	}
	pk_clock_deadline(CLOCK_MONOTONIC, seconds_ms(w[1]), &until);
	end_ms = pk_clock_monotonic_ms() + seconds_ms(w[1]);
	pthread_mutex_lock(&p->lock);
	while (true) {
		if (reconnect && p->reconnects > p->reconnects_seen) {
			p->reconnects_seen = p->reconnects;
			break;
		}
		if (!reconnect && !hsm_virt_connected(p->virt)) {
			break;
		}
		if (!reconnect) {
			/* No callback for the loss itself: poll. */
			struct timespec step;

			pk_clock_deadline(CLOCK_MONOTONIC, 50, &step);
			pthread_cond_timedwait(&p->cond, &p->lock, &step);
			if (pk_clock_monotonic_ms() > end_ms) {
				r = pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT, "still connected");
				break;
			}
			continue;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT) {
			r = pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT, "no reconnect in %s s", w[1]);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (r == 0) {
		printf("   connected=%d generation=%u\n", hsm_virt_connected(p->virt),
		       hsm_virt_generation(p->virt));
	}
	return r;
}
