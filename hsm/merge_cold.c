/*
 * Cold merge: the VM is not running, so hsmd itself merges with qemu-img
 * on the volumes prepared on this host.
 *
 *   COMMITTING  `qemu-img commit -d -b BASE TOP` copies the data of TOP
 *               (and of the layers between) into BASE and leaves TOP as it
 *               is (-d), so the old chain stays valid; then the child's
 *               qcow2 header is pointed at BASE (`qemu-img rebase -u`, a
 *               header-only change, relative name = base's volume id).
 *               Until that rebase the old chain is what the headers say; after
 *               it, the new one: each instant has one consistent chain.
 *   PIVOTING    (TOP is the leaf: there is no child, the VM's definition
 *               names TOP.) TOP is marked ILLEGAL through the SPM, then the
 *               definition is switched to BASE (source, format and our
 *               metadata in one redefinition), as a live pivot would. A VM
 *               started before the switch keeps TOP: the mark is undone and
 *               the job fails with the old chain intact.
 *
 * "Before" and "after" are read from the storage every time: the qcow2
 * headers from the drive's leaf, and for a leaf merge the leaf the VM's
 * definition names. So a resumed job, or one re-run, continues from what
 * is really there.
 *
 * Progress comes from `qemu-img commit -p` ("(12.34/100%)" on stdout), read
 * as it runs; the child is killed when hsmd stops or the job is aborted
 * (a later commit starts over: copying the same data again is harmless).
 * Children are started with posix_spawn (common/proc.h explains why).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/merge_job.h"

extern char **environ;

#define QEMU_IMG_TIMEOUT_MS 120000
#define STDERR_KEEP 4096

/* The leaf the VM's definition names for the drive. */
static enum hsm_merge_step defined_leaf(struct hsm_merge_job *job, char leaf[PK_UUID_BUFLEN],
					struct pk_error *err)
{
	struct hsm_merge_live *live = pk_xcalloc(1, sizeof(*live));
	int r;

	r = hsm_merge_live_read(job->hsm, job->vm, job->drive, live, err);
	if (r == 0 && !live->ids[0][0]) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				 "drive '%s' of VM '%s' opens a file that is not a volume of image "
				 "'%s'", job->drive, job->vm, job->image);
	}
	if (r == 0) {
		memcpy(leaf, live->ids[0], PK_UUID_BUFLEN);
	}
	free(live);
	return hsm_merge_step_of(r, err);
}

/* The chain the storage describes now: before, after, or neither. A chain
 * that cannot be read FAILs (RETRY only for the definition's leaf). */
static enum hsm_merge_step disk_state(struct hsm_merge_job *job, bool *ret_before,
				      bool *ret_after, struct pk_error *err)
{
	char (*ids)[PK_UUID_BUFLEN] = NULL;
	char leaf[PK_UUID_BUFLEN];
	enum hsm_merge_step s;
	size_t n = 0;
	int r;

	*ret_before = *ret_after = false;
	/* A leaf merge moves the definition; any other moves the child's header. */
	snprintf(leaf, sizeof(leaf), "%s", job->chain[0]);
	if (job->active_leaf) {
		s = defined_leaf(job, leaf, err);
		if (s != HSM_MERGE_STEP_MOVED) {
			return s;
		}
	}
	ids = pk_xcalloc(HSM_MERGE_CHAIN_MAX, PK_UUID_BUFLEN);
	r = hsm_merge_disk_chain(job->hsm, job->domain, job->image, leaf, ids, &n, err);
	if (r == 0) {
		*ret_before = hsm_merge_job_chain_is_before(job, (const char(*)[PK_UUID_BUFLEN])ids, n);
		*ret_after = hsm_merge_job_chain_is_after(job, (const char(*)[PK_UUID_BUFLEN])ids, n);
	}
	free(ids);
	return r < 0 ? HSM_MERGE_STEP_FAIL : HSM_MERGE_STEP_MOVED;
}

static enum hsm_merge_step vm_still_down(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_virt_state state;
	int r;

	r = hsm_virt_ready(job->hsm, err);
	if (r == 0) {
		r = hsm_virt_domain_state(job->hsm->virt, job->vm, &state, NULL, err);
	}
	if (r < 0) {
		return hsm_merge_step_of(r, err);
	}
	if (state != HSM_VIRT_STATE_SHUTOFF && state != HSM_VIRT_STATE_CRASHED) {
		pk_error_set(err, PK_E_CONFLICT, EBUSY, "VM '%s' is %s: a cold merge needs it shut off",
			     job->vm, hsm_virt_state_name(state));
		return HSM_MERGE_STEP_FAIL;
	}
	return HSM_MERGE_STEP_MOVED;
}

enum hsm_merge_step hsm_merge_cold_prepare(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s;
	bool before, after;

	pk_fault_point("merge:preparing");
	s = vm_still_down(job, err);
	for (size_t i = 0; s == HSM_MERGE_STEP_MOVED && i < job->nchain; i++) {
		if (hsm_image_volume_ready(job->hsm, job->domain, job->image, job->chain[i], NULL,
					   err) < 0) {
			pk_error_prefix(err, "a cold merge needs image '%s' prepared on this host "
					"(PrepareImage)", job->image);
			s = HSM_MERGE_STEP_FAIL;
		}
	}
	if (s == HSM_MERGE_STEP_MOVED) {
		s = disk_state(job, &before, &after, err);
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (before) {
		return hsm_merge_job_step_to(job, HSM_MERGE_EXTENDING, err);
	}
	pk_error_set(err, PK_E_ILLEGAL, EINVAL,
		     "the qcow2 chain of drive '%s' (image '%s') is not the chain of its metadata; "
		     "nothing was done", job->drive, job->image);
	return HSM_MERGE_STEP_FAIL;
}

/* ---- qemu-img commit with progress ----------------------------------------------- */

/* The last "(NN.NN/100%)" in buf, in hundredths of a percent; -1 if none. */
static long last_percent(const char *buf)
{
	const char *p = buf, *hit = NULL;
	long v = -1;

	while ((p = strchr(p, '('))) {
		hit = p++;
	}
	if (hit) {
		double d;
		if (sscanf(hit, "(%lf/100%%)", &d) == 1 && d >= 0 && d <= 100) {
			v = (long)(d * 100);
		}
	}
	return v;
}

/*
 * Runs argv; reports progress; kills it on stop (returns 1) or abort
 * (returns 2). 0 on exit status 0; else -errno with the last line of stderr.
 */
static int run_with_progress(struct hsm_merge_job *job, const char *const *argv,
			     struct pk_error *err)
{
	posix_spawn_file_actions_t fa;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char errbuf[STDERR_KEEP] = "", outbuf[256];
	size_t errlen = 0;
	pid_t pid = -1;
	int status = 0, rv, r = 0;
	bool out_open = true, err_open = true;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = pk_error_set(err, PK_E_INTERNAL, errno, "pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	rv = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (rv != 0) {
		r = pk_error_set(err, PK_E_INTERNAL, rv, "cannot run %s: %s", argv[0], strerror(rv));
		goto out;
	}
	while (out_open || err_open) {
		struct pollfd fds[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		ssize_t n;

		if (hsm_merge_stopping(job) || hsm_merge_abort_requested(job)) {
			r = hsm_merge_stopping(job) ? 1 : 2;
			kill(pid, SIGKILL);
			break;
		}
		fds[0].fd = out_open ? outp[0] : -1;
		fds[1].fd = err_open ? errp[0] : -1;
		if (poll(fds, 2, 250) < 0 && errno != EINTR) {
			break;
		}
		if (fds[0].revents) {
			n = read(outp[0], outbuf, sizeof(outbuf) - 1);
			if (n <= 0) {
				out_open = false;
			} else {
				long pct;
				outbuf[n] = '\0';
				pct = last_percent(outbuf);
				if (pct >= 0) {
					uint64_t end = job->end ? job->end : 10000;
					hsm_merge_job_progress(job, end / 10000 * (uint64_t)pct +
									    end % 10000 * (uint64_t)pct / 10000,
							       end);
				}
			}
		}
		if (fds[1].revents) {
			n = read(errp[0], errbuf + errlen, sizeof(errbuf) - 1 - errlen);
			if (n <= 0) {
				err_open = false;
			} else {
				errlen += (size_t)n;
				errbuf[errlen] = '\0';
				if (errlen > sizeof(errbuf) / 2) { /* keep the tail */
					memmove(errbuf, errbuf + errlen / 2, errlen - errlen / 2 + 1);
					errlen -= errlen / 2;
				}
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		char *nl;
		while (errlen && (errbuf[errlen - 1] == '\n' || errbuf[errlen - 1] == '\r')) {
			errbuf[--errlen] = '\0';
		}
		nl = strrchr(errbuf, '\n');
		r = pk_error_set(err, PK_E_IO, EIO, "%s %s failed (%s %d): %s", argv[0], argv[1],
				 WIFEXITED(status) ? "exit" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 nl ? nl + 1 : errbuf);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0) {
			close(outp[i]);
		}
		if (errp[i] >= 0) {
			close(errp[i]);
		}
	}
	return r;
}

static int path_of(struct hsm_merge_job *job, const char *volume, char path[HSM_PATH_MAX],
		   struct pk_error *err)
{
	return hsm_image_link_path(job->hsm, job->domain, job->image, volume, path, HSM_PATH_MAX,
				   err);
}

static int base_format(struct hsm_merge_job *job, enum hsm_disk_format *ret,
		       struct pk_error *err)
{
	struct hsm_volume_list list = { 0 };
	const struct hsm_volume *base;
	int r;

	r = hsm_volumes_read(job->hsm, job->domain, &list, err);
	if (r < 0) {
		return r;
	}
	base = hsm_volume_list_find(&list, job->base);
	if (base) {
		*ret = base->meta.format == PK_VOLUME_COW ? HSM_DISK_FORMAT_QCOW2
							  : HSM_DISK_FORMAT_RAW;
	} else {
		r = pk_error_set(err, PK_E_ILLEGAL, ENOENT, "base '%s' vanished", job->base);
	}
	hsm_volume_list_release(&list);
	return r;
}

/*
 * Into CLEANUP after an internal cold commit. The persistent definition may
 * still list the chain before the merge in <backingStore> (libvirt writes
 * the chain there at a live snapshot): the next start would look for the
 * merged-away layer. So it is redefined on the same leaf without it, and
 * libvirt reads the chain from the qcow2 headers. Idempotent; taken on
 * every way into CLEANUP, so a crash before it is mended by the resume.
 */
static enum hsm_merge_step cold_commit_done(struct hsm_merge_job *job, struct pk_error *err)
{
	char leaf_path[HSM_PATH_MAX];
	int r;

	if (!job->active_leaf) {
		r = path_of(job, job->chain[0], leaf_path, err);
		if (r == 0) {
			r = hsm_virt_ready(job->hsm, err);
		}
		if (r == 0) {
			r = hsm_virt_disk_source_set(job->hsm->virt, job->vm, job->drive, leaf_path,
						     HSM_DISK_FORMAT_QCOW2, job->chain[0], err);
		}
		if (r < 0) {
			pk_error_prefix(err, "the definition of VM '%s' still lists the chain before "
					"the merge", job->vm);
			return hsm_merge_step_of(r, err);
		}
	}
	return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
}

enum hsm_merge_step hsm_merge_cold_commit(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_disk_format base_fmt;
	const char *child = hsm_merge_job_child(job);
	char top_path[HSM_PATH_MAX], base_path[HSM_PATH_MAX], child_path[HSM_PATH_MAX];
	char rate[32] = "";
	enum hsm_merge_step s;
	bool before, after;
	int r;

	s = vm_still_down(job, err);
	if (s == HSM_MERGE_STEP_MOVED) {
		s = disk_state(job, &before, &after, err);
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (after) {
		return cold_commit_done(job, err);
	}
	if (!before) {
		pk_error_set(err, PK_E_ILLEGAL, EINVAL,
			     "the qcow2 chain of image '%s' changed during the cold merge", job->image);
		return HSM_MERGE_STEP_FAIL;
	}
	r = path_of(job, job->top, top_path, err);
	if (r == 0) {
		r = path_of(job, job->base, base_path, err);
	}
	if (r == 0 && *child) {
		r = path_of(job, child, child_path, err);
	}
	if (r == 0) {
		r = base_format(job, &base_fmt, err);
	}
	if (r < 0) {
		return HSM_MERGE_STEP_FAIL;
	}

	r = hsm_merge_job_record_set(job, HSM_MERGE_FIELD_ATTEMPTS, job->attempts + 1, err);
	if (r < 0) {
		return HSM_MERGE_STEP_RETRY;
	}
	if (job->bandwidth) {
		snprintf(rate, sizeof(rate), "%" PRIu64, job->bandwidth);
	}
	/* -f names the top's format; the layers below are opened with the
	 * formats their headers name, which disk_state found whole and equal to
	 * the metadata's (hsm_qemu_img_chain), so nothing is probed. */
	const char *commit[12] = { "qemu-img", "commit", "-p", "-d", "-f", "qcow2", "-b", base_path };
	size_t argc = 8;
	if (rate[0]) {
		commit[argc++] = "-r";
		commit[argc++] = rate;
	}
	commit[argc++] = top_path;
	commit[argc] = NULL;
	pk_log_info("merge job job='%s': qemu-img commit top='%s' base='%s' attempt=%u", job->id,
		    job->top, job->base, job->attempts);
	r = run_with_progress(job, commit, err);
	if (r == 2) {
		return hsm_merge_job_step_to(job, HSM_MERGE_ABORTING, err);
	}
	if (r == 1) {
		return HSM_MERGE_STEP_STOP;
	}
	if (r < 0) {
		return HSM_MERGE_STEP_FAIL;
	}
	hsm_merge_job_progress(job, job->end ? job->end : 1, job->end ? job->end : 1);
	if (*child) {
		/* Header only; the child's new backing name is relative: base's volume id. */
		const char *rebase[] = { "qemu-img", "rebase", "-u", "-f", "qcow2", "-F",
					 hsm_disk_format_name(base_fmt),
					 "-b", job->base, child_path, NULL };
		r = pk_proc_check(rebase, QEMU_IMG_TIMEOUT_MS, PK_E_IO, NULL, err);
		if (r < 0) {
			return HSM_MERGE_STEP_FAIL;
		}
	}
	s = disk_state(job, &before, &after, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (job->active_leaf && before) {
		return hsm_merge_job_step_to(job, HSM_MERGE_PIVOTING, err);
	}
	if (!after) {
		pk_error_set(err, PK_E_ILLEGAL, EINVAL,
			     "after qemu-img commit the qcow2 chain of image '%s' is not the expected "
			     "one", job->image);
		return HSM_MERGE_STEP_FAIL;
	}
	return cold_commit_done(job, err);
}

/* The leaf switch did not happen (failure in err): the old leaf LEGAL again,
 * then FAIL with err. */
static enum hsm_merge_step pivot_undone(struct hsm_merge_job *job, struct pk_error *err)
{
	char why[PK_ERROR_MSG_MAX];
	enum pk_errc code = err->code;
	enum hsm_merge_step s;

	snprintf(why, sizeof(why), "%s", err->message);
	pk_error_clear(err);
	s = hsm_merge_leaf_restore(job, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	pk_error_set(err, code, 0,
		     "%s; VM '%s' keeps its leaf '%s' and the chain before the merge (the copy of "
		     "its data in base '%s' changes nothing)", why, job->vm, job->top, job->base);
	return HSM_MERGE_STEP_FAIL;
}

enum hsm_merge_step hsm_merge_cold_pivot(struct hsm_merge_job *job, struct pk_error *err)
{
	char base_path[HSM_PATH_MAX];
	enum hsm_disk_format base_fmt;
	enum hsm_merge_step s;
	bool before, after;
	int r;

	s = vm_still_down(job, err);
	if (s == HSM_MERGE_STEP_RETRY) {
		return s;
	}
	if (s == HSM_MERGE_STEP_MOVED) {
		s = disk_state(job, &before, &after, err);
		if (s == HSM_MERGE_STEP_RETRY) {
			return s;
		}
	}
	if (s == HSM_MERGE_STEP_MOVED && after) {
		return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
	}
	if (s == HSM_MERGE_STEP_MOVED && !before) {
		pk_error_set(err, PK_E_ILLEGAL, EINVAL,
			     "the chain of drive '%s' of VM '%s' changed during the cold merge",
			     job->drive, job->vm);
		s = HSM_MERGE_STEP_FAIL;
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		return pivot_undone(job, err);
	}
	/* Idempotent: marked again when the step is entered again. */
	s = hsm_merge_leaf_set_legal(job, false, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	pk_fault_point("merge:pivoting:marked");
	r = path_of(job, job->base, base_path, err);
	if (r == 0) {
		r = base_format(job, &base_fmt, err);
	}
	if (r == 0) {
		r = hsm_virt_ready(job->hsm, err);
	}
	if (r == 0) {
		r = hsm_virt_disk_source_set(job->hsm->virt, job->vm, job->drive, base_path, base_fmt,
					     job->base, err);
	}
	if (r < 0) {
		return hsm_merge_error_transient(err) ? HSM_MERGE_STEP_RETRY : pivot_undone(job, err);
	}
	pk_log_info("merge job job='%s': VM '%s' drive '%s' now defined on base '%s'", job->id,
		    job->vm, job->drive, job->base);
	s = disk_state(job, &before, &after, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (!after) {
		pk_error_set(err, PK_E_ILLEGAL, EINVAL,
			     "after the switch to base '%s' the chain of drive '%s' is not the "
			     "expected one", job->base, job->drive);
		return HSM_MERGE_STEP_FAIL;
	}
	return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
}

enum hsm_merge_step hsm_merge_cold_abort(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s;
	bool before, after;

	s = disk_state(job, &before, &after, err);
	if (s == HSM_MERGE_STEP_FAIL && hsm_merge_error_transient(err)) {
		s = HSM_MERGE_STEP_RETRY; /* nothing to undo: any transient failure retries */
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (after) {
		pk_log_warn("merge job job='%s': the cold merge completed before the abort; "
			    "finishing it", job->id);
		return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
	}
	pk_error_set(err, PK_E_ABORTED, ECANCELED,
		     "aborted by request; the chain of image '%s' is unchanged", job->image);
	return HSM_MERGE_STEP_FAIL;
}
