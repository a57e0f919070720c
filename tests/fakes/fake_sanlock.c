/*
 * fake_sanlock — see fake_sanlock.h. Replaces libsanlock client calls.
 */
#include "tests/fakes/fake_sanlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>

#define MAX_LS 8
#define MAX_RES 8
#define MAX_REG 8
#define FAKE_VERSION 0x03080500u

enum join_state { JOIN_NONE = 0, JOIN_JOINING, JOIN_JOINED };

struct fake_ls_disk { /* a lockspace written on storage */
	bool used;
	char path[SANLK_PATH_LEN];
	char name[SANLK_NAME_LEN + 1];
};

struct fake_res_disk { /* a resource written on storage */
	bool used;
	char path[SANLK_PATH_LEN];
	uint64_t offset;
	char lockspace[SANLK_NAME_LEN + 1];
	char name[SANLK_NAME_LEN + 1];
	uint64_t owner;
	uint64_t generation;
	int held_by; /* registration index, -1 */
	uint64_t lver;
};

struct fake_join { /* the local daemon's lockspaces */
	bool used;
	char name[SANLK_NAME_LEN + 1];
	char path[SANLK_PATH_LEN];
	uint64_t host_id;
	enum join_state state;
	int polls_left;
	bool will_fail; /* not written on storage: the join ends in failure */
	uint64_t generation;
};

struct fake_reg {
	bool used;
	int fd;
	dev_t dev;
	ino_t ino;
};

static struct {
	bool running;
	int join_polls;
	int fail_rv[FAKE_SANLOCK_OP_COUNT];
	int calls[FAKE_SANLOCK_OP_COUNT];
	uint32_t last_io_timeout, last_add_flags, last_ls_flags, last_res_flags;
	uint64_t next_generation;
	struct fake_ls_disk ls_disk[MAX_LS];
	struct fake_res_disk res_disk[MAX_RES];
	struct fake_join joins[MAX_LS];
	struct fake_reg regs[MAX_REG];
} fk = { .running = true, .join_polls = 1 };

static void copy_name(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void die(const char *msg)
{
	fprintf(stderr, "fake_sanlock: %s\n", msg);
	abort();
}

/* A registration whose fd was closed (or reused) is dead: drop its leases. */
static void sweep_registrations(void)
{
	for (int i = 0; i < MAX_REG; i++) {
		struct stat st;

		if (!fk.regs[i].used) {
			continue;
		}
		if (fstat(fk.regs[i].fd, &st) == 0 && st.st_dev == fk.regs[i].dev &&
		    st.st_ino == fk.regs[i].ino) {
			continue;
		}
		fk.regs[i].used = false;
		for (int j = 0; j < MAX_RES; j++) {
			if (fk.res_disk[j].used && fk.res_disk[j].held_by == i) {
				fk.res_disk[j].held_by = -1;
				fk.res_disk[j].owner = 0;
				fk.res_disk[j].generation = 0;
			}
		}
	}
}

/* Common entry: counts, injected failure, daemon stopped. 0 to proceed. */
static int enter(enum fake_sanlock_op op)
{
	int rv;

	fk.calls[op]++;
	sweep_registrations();
	if (fk.fail_rv[op] != 0) {
		rv = fk.fail_rv[op];
		fk.fail_rv[op] = 0;
		return rv;
	}
	if (!fk.running) {
		return -ECONNREFUSED;
	}
	return 0;
}

void fake_sanlock_reset(void)
{
	for (int i = 0; i < MAX_REG; i++) {
		if (fk.regs[i].used) {
			struct stat st;

			/* Close only fds still ours (the caller may have closed it). */
			if (fstat(fk.regs[i].fd, &st) == 0 && st.st_ino == fk.regs[i].ino &&
			    st.st_dev == fk.regs[i].dev) {
				close(fk.regs[i].fd);
			}
		}
	}
	memset(&fk, 0, sizeof(fk));
	fk.running = true;
	fk.join_polls = 1;
	fk.next_generation = 1;
}

void fake_sanlock_set_running(bool running)
{
	fk.running = running;
}

void fake_sanlock_fail_next(enum fake_sanlock_op op, int rv)
{
	if (op >= FAKE_SANLOCK_OP_COUNT || rv >= 0) {
		die("fail_next needs a valid op and a negative rv");
	}
	fk.fail_rv[op] = rv;
}

void fake_sanlock_set_join_polls(int polls)
{
	fk.join_polls = polls;
}

int fake_sanlock_calls(enum fake_sanlock_op op)
{
	return op < FAKE_SANLOCK_OP_COUNT ? fk.calls[op] : 0;
}

uint32_t fake_sanlock_last_io_timeout(void)
{
	return fk.last_io_timeout;
}

uint32_t fake_sanlock_last_add_flags(void)
{
	return fk.last_add_flags;
}

uint32_t fake_sanlock_last_ls_flags(void)
{
	return fk.last_ls_flags;
}

uint32_t fake_sanlock_last_res_flags(void)
{
	return fk.last_res_flags;
}

/* ---- lookups ------------------------------------------------------------ */

static struct fake_ls_disk *ls_disk_find(const char *path)
{
	for (int i = 0; i < MAX_LS; i++) {
		if (fk.ls_disk[i].used && strcmp(fk.ls_disk[i].path, path) == 0) {
			return &fk.ls_disk[i];
		}
	}
	return NULL;
}

static struct fake_res_disk *res_disk_at(const char *path, uint64_t offset)
{
	for (int i = 0; i < MAX_RES; i++) {
		if (fk.res_disk[i].used && fk.res_disk[i].offset == offset &&
		    strcmp(fk.res_disk[i].path, path) == 0) {
			return &fk.res_disk[i];
		}
	}
	return NULL;
}

static struct fake_res_disk *res_disk_named(const char *lockspace, const char *name)
{
	for (int i = 0; i < MAX_RES; i++) {
		if (fk.res_disk[i].used && strcmp(fk.res_disk[i].lockspace, lockspace) == 0 &&
		    strcmp(fk.res_disk[i].name, name) == 0) {
			return &fk.res_disk[i];
		}
	}
	return NULL;
}

static struct fake_join *join_find(const char *name)
{
	for (int i = 0; i < MAX_LS; i++) {
		if (fk.joins[i].used && strcmp(fk.joins[i].name, name) == 0) {
			return &fk.joins[i];
		}
	}
	return NULL;
}

static int reg_find(int sock)
{
	for (int i = 0; i < MAX_REG; i++) {
		if (fk.regs[i].used && fk.regs[i].fd == sock) {
			return i;
		}
	}
	return -1;
}

/* Matches a resource struct against storage, as the daemon's verify does. */
static int res_lookup(const struct sanlk_resource *res, struct fake_res_disk **ret)
{
	char ls[SANLK_NAME_LEN + 1], name[SANLK_NAME_LEN + 1];
	struct fake_res_disk *d;

	if (res->num_disks != 1) {
		return -EINVAL;
	}
	fk.last_res_flags = res->flags;
	copy_name(ls, sizeof(ls), res->lockspace_name);
	copy_name(name, sizeof(name), res->name);
	d = res_disk_at(res->disks[0].path, res->disks[0].offset);
	if (!d) {
		return SANLK_LEADER_MAGIC;
	}
	if (ls[0] && strcmp(ls, d->lockspace) != 0) {
		return SANLK_LEADER_LOCKSPACE;
	}
	if (name[0] && strcmp(name, d->name) != 0) {
		return SANLK_LEADER_RESOURCE;
	}
	*ret = d;
	return 0;
}

/* ---- inspection ------------------------------------------------------- */

bool fake_sanlock_lockspace_written(const char *path, const char *lockspace)
{
	struct fake_ls_disk *d = ls_disk_find(path);

	return d && strcmp(d->name, lockspace) == 0;
}

bool fake_sanlock_resource_written(const char *path, uint64_t offset, const char *lockspace,
				   const char *name)
{
	struct fake_res_disk *d = res_disk_at(path, offset);

	return d && strcmp(d->lockspace, lockspace) == 0 && strcmp(d->name, name) == 0;
}

bool fake_sanlock_joined(const char *lockspace, uint64_t host_id)
{
	struct fake_join *j = join_find(lockspace);

	return j && j->state == JOIN_JOINED && j->host_id == host_id;
}

uint64_t fake_sanlock_owner(const char *lockspace, const char *name)
{
	struct fake_res_disk *d;

	sweep_registrations();
	d = res_disk_named(lockspace, name);
	return d ? d->owner : 0;
}

void fake_sanlock_set_owner(const char *lockspace, const char *name, uint64_t host_id)
{
	struct fake_res_disk *d = res_disk_named(lockspace, name);

	if (!d) {
		die("set_owner: resource not written");
	}
	d->owner = host_id;
	d->generation = host_id ? 7 : 0;
	d->held_by = -1;
}

void fake_sanlock_lose_lockspace(const char *lockspace)
{
	struct fake_join *j = join_find(lockspace);

	if (j) {
		memset(j, 0, sizeof(*j));
	}
	for (int i = 0; i < MAX_RES; i++) {
		if (fk.res_disk[i].used && strcmp(fk.res_disk[i].lockspace, lockspace) == 0) {
			fk.res_disk[i].held_by = -1; /* owner on storage stays */
		}
	}
}

/* ---- the replaced libsanlock functions -------------------------------- */

int sanlock_version(uint32_t flags, uint32_t *version, uint32_t *proto)
{
	int rv = enter(FAKE_SANLOCK_VERSION);

	(void)flags;
	if (rv < 0) {
		return rv;
	}
	*version = FAKE_VERSION;
	*proto = 1;
	return 0;
}

int sanlock_write_lockspace(struct sanlk_lockspace *ls, int max_hosts, uint32_t flags,
			    uint32_t io_timeout)
{
	struct fake_ls_disk *d;
	int rv = enter(FAKE_SANLOCK_WRITE_LOCKSPACE);

	(void)max_hosts;
	(void)flags;
	if (rv < 0) {
		return rv;
	}
	fk.last_io_timeout = io_timeout;
	fk.last_ls_flags = ls->flags;
	d = ls_disk_find(ls->host_id_disk.path);
	for (int i = 0; !d && i < MAX_LS; i++) {
		if (!fk.ls_disk[i].used) {
			d = &fk.ls_disk[i];
		}
	}
	if (!d) {
		die("too many lockspaces");
	}
	d->used = true;
	copy_name(d->path, sizeof(d->path), ls->host_id_disk.path);
	copy_name(d->name, sizeof(d->name), ls->name);
	return 0;
}

int sanlock_write_resource(struct sanlk_resource *res, int max_hosts, int num_hosts,
			   uint32_t flags)
{
	struct fake_res_disk *d;
	int rv = enter(FAKE_SANLOCK_WRITE_RESOURCE);

	(void)max_hosts;
	(void)num_hosts;
	(void)flags;
	if (rv < 0) {
		return rv;
	}
	if (res->num_disks != 1) {
		return -EINVAL;
	}
	fk.last_res_flags = res->flags;
	d = res_disk_at(res->disks[0].path, res->disks[0].offset);
	for (int i = 0; !d && i < MAX_RES; i++) {
		if (!fk.res_disk[i].used) {
			d = &fk.res_disk[i];
		}
	}
	if (!d) {
		die("too many resources");
	}
	memset(d, 0, sizeof(*d));
	d->used = true;
	copy_name(d->path, sizeof(d->path), res->disks[0].path);
	d->offset = res->disks[0].offset;
	copy_name(d->lockspace, sizeof(d->lockspace), res->lockspace_name);
	copy_name(d->name, sizeof(d->name), res->name);
	d->held_by = -1;
	return 0;
}

int sanlock_read_resource_owners(struct sanlk_resource *res, uint32_t flags,
				 struct sanlk_host **hss, int *hss_count)
{
	struct fake_res_disk *d = NULL;
	int rv = enter(FAKE_SANLOCK_READ_OWNERS);

	(void)flags;
	*hss = NULL;
	*hss_count = 0;
	if (rv < 0) {
		return rv;
	}
	rv = res_lookup(res, &d);
	if (rv == SANLK_LEADER_MAGIC) {
		return -EINVAL; /* what sanlock answers for an empty area */
	}
	if (rv < 0) {
		return rv;
	}
	if (d->owner) {
		*hss = calloc(1, sizeof(**hss));
		if (!*hss) {
			return -ENOMEM;
		}
		(*hss)[0].host_id = d->owner;
		(*hss)[0].generation = d->generation;
		*hss_count = 1;
	}
	return 0;
}

int sanlock_add_lockspace_timeout(struct sanlk_lockspace *ls, uint32_t flags,
				  uint32_t io_timeout)
{
	struct fake_join *j;
	struct fake_ls_disk *d;
	int rv = enter(FAKE_SANLOCK_ADD_LOCKSPACE);

	if (rv < 0) {
		return rv;
	}
	fk.last_add_flags = flags;
	fk.last_io_timeout = io_timeout;
	fk.last_ls_flags = ls->flags;
	j = join_find(ls->name);
	if (j) {
		return j->state == JOIN_JOINED ? -EEXIST : -EINPROGRESS;
	}
	for (int i = 0; !j && i < MAX_LS; i++) {
		if (!fk.joins[i].used) {
			j = &fk.joins[i];
		}
	}
	if (!j) {
		die("too many joined lockspaces");
	}
	d = ls_disk_find(ls->host_id_disk.path);
	memset(j, 0, sizeof(*j));
	j->used = true;
	copy_name(j->name, sizeof(j->name), ls->name);
	copy_name(j->path, sizeof(j->path), ls->host_id_disk.path);
	j->host_id = ls->host_id;
	j->will_fail = !d || strcmp(d->name, j->name) != 0 || ls->host_id < 1 ||
		       ls->host_id > 2000;
	j->generation = fk.next_generation++;
	j->state = JOIN_JOINING;
	j->polls_left = fk.join_polls;
	if (!(flags & SANLK_ADD_ASYNC)) {
		/* Synchronous: done (or failed) on return. */
		if (j->will_fail) {
			memset(j, 0, sizeof(*j));
			return SANLK_LEADER_MAGIC;
		}
		j->state = JOIN_JOINED;
	}
	return 0;
}

int sanlock_inq_lockspace(struct sanlk_lockspace *ls, uint32_t flags)
{
	struct fake_join *j;
	int rv = enter(FAKE_SANLOCK_INQ_LOCKSPACE);

	(void)flags;
	if (rv < 0) {
		return rv;
	}
	j = join_find(ls->name);
	if (!j || j->host_id != ls->host_id) {
		return -ENOENT;
	}
	if (j->state == JOIN_JOINING) {
		if (j->polls_left > 0) {
			j->polls_left--;
			return -EINPROGRESS;
		}
		if (j->will_fail) {
			memset(j, 0, sizeof(*j));
			return -ENOENT;
		}
		j->state = JOIN_JOINED;
	}
	return 0;
}

int sanlock_rem_lockspace(struct sanlk_lockspace *ls, uint32_t flags)
{
	struct fake_join *j;
	int rv = enter(FAKE_SANLOCK_REM_LOCKSPACE);

	if (rv < 0) {
		return rv;
	}
	j = join_find(ls->name);
	if (!j) {
		return -ENOENT;
	}
	for (int i = 0; i < MAX_RES; i++) {
		struct fake_res_disk *d = &fk.res_disk[i];

		if (d->used && d->held_by >= 0 && strcmp(d->lockspace, j->name) == 0) {
			if (flags & SANLK_REM_UNUSED) {
				return -EBUSY;
			}
			/* sanlock would SIGKILL the holder; the fake just drops it. */
			d->held_by = -1;
			d->owner = 0;
		}
	}
	memset(j, 0, sizeof(*j));
	return 0;
}

int sanlock_register(void)
{
	struct stat st;
	int p[2];
	int rv = enter(FAKE_SANLOCK_REGISTER);

	if (rv < 0) {
		return rv;
	}
	for (int i = 0; i < MAX_REG; i++) {
		if (fk.regs[i].used) {
			continue;
		}
		/* A pipe's read end: a real fd with an inode of its own. */
		if (pipe2(p, O_CLOEXEC) < 0) {
			return -errno;
		}
		close(p[1]);
		if (fstat(p[0], &st) < 0) {
			close(p[0]);
			return -errno;
		}
		fk.regs[i].used = true;
		fk.regs[i].fd = p[0];
		fk.regs[i].dev = st.st_dev;
		fk.regs[i].ino = st.st_ino;
		return p[0];
	}
	die("too many registrations");
	return -EMFILE;
}

int sanlock_acquire(int sock, int pid, uint32_t flags, int res_count,
		    struct sanlk_resource *res_args[], struct sanlk_options *opt_in)
{
	struct fake_res_disk *d = NULL;
	struct fake_join *j;
	char ls[SANLK_NAME_LEN + 1];
	int reg;
	int rv = enter(FAKE_SANLOCK_ACQUIRE);

	(void)pid;
	(void)flags;
	(void)opt_in;
	if (rv < 0) {
		return rv;
	}
	reg = reg_find(sock);
	if (reg < 0 || res_count != 1) {
		return -EINVAL;
	}
	copy_name(ls, sizeof(ls), res_args[0]->lockspace_name);
	j = join_find(ls);
	if (!j || j->state != JOIN_JOINED) {
		return -ENOSPC;
	}
	rv = res_lookup(res_args[0], &d);
	if (rv < 0) {
		return rv;
	}
	if (d->held_by == reg) {
		return -EEXIST;
	}
	if (d->owner && d->owner != j->host_id) {
		return SANLK_ACQUIRE_IDLIVE;
	}
	if (d->held_by >= 0) {
		return SANLK_ACQUIRE_IDLIVE; /* another local process */
	}
	d->owner = j->host_id;
	d->generation = j->generation;
	d->held_by = reg;
	d->lver++;
	return 0;
}

int sanlock_release(int sock, int pid, uint32_t flags, int res_count,
		    struct sanlk_resource *res_args[])
{
	struct fake_res_disk *d = NULL;
	int reg;
	int rv = enter(FAKE_SANLOCK_RELEASE);

	(void)pid;
	(void)flags;
	if (rv < 0) {
		return rv;
	}
	reg = reg_find(sock);
	if (reg < 0 || res_count != 1) {
		return -EINVAL;
	}
	rv = res_lookup(res_args[0], &d);
	if (rv < 0) {
		return rv;
	}
	if (d->held_by != reg) {
		return -ENOENT;
	}
	d->held_by = -1;
	d->owner = 0;
	d->generation = 0;
	return 0;
}

int sanlock_inquire(int sock, int pid, uint32_t flags, int *res_count, char **res_state)
{
	char *state = NULL;
	size_t len = 0;
	int count = 0;
	int reg;
	int rv = enter(FAKE_SANLOCK_INQUIRE);

	(void)pid;
	(void)flags;
	*res_count = 0;
	*res_state = NULL;
	if (rv < 0) {
		return rv;
	}
	reg = reg_find(sock);
	if (reg < 0) {
		return -EINVAL;
	}
	for (int i = 0; i < MAX_RES; i++) {
		struct fake_res_disk *d = &fk.res_disk[i];
		char item[SANLK_MAX_RES_STR];
		int n;
		char *grown;

		if (!d->used || d->held_by != reg) {
			continue;
		}
		n = snprintf(item, sizeof(item), "%s%s:%s:%s:%llu:%llu", count ? " " : "",
			     d->lockspace, d->name, d->path, (unsigned long long)d->offset,
			     (unsigned long long)d->lver);
		grown = realloc(state, len + (size_t)n + 1);
		if (!grown) {
			free(state);
			return -ENOMEM;
		}
		state = grown;
		memcpy(state + len, item, (size_t)n + 1);
		len += (size_t)n;
		count++;
	}
	*res_count = count;
	*res_state = state;
	return 0;
}
