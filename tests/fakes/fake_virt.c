/* An in-memory libvirtd behind hsm/virt.h; see fake_virt.h. */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/uuid.h"
#include "common/xalloc.h"

#define CHAIN_MAX 256

struct layer {
	char *path;
	enum hsm_disk_format format;
	bool block;
	int index; /* -1 while the domain is shut off */
};

struct job {
	bool on;
	enum hsm_virt_job_type type;
	int base_index;           /* -1: none (pull to no base) */
	int top_index;            /* commit only */
	uint64_t cur, end, bandwidth;
	enum hsm_vmxml_mirror mirror;
};

struct disk {
	char target[HSM_VMXML_TARGET_MAX];
	char bus[16];
	struct layer *layers; /* leaf first */
	size_t n;
	struct job job;
};

struct domain {
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[PK_UUID_BUFLEN];
	char type[16];
	enum hsm_virt_state state;
	int id;
	bool agent;
	bool has_meta;
	struct hsm_drive_id *drives;
	size_t ndrives;
	struct disk *disks;
	size_t ndisks;
	int next_index;
};

struct image {
	char *path;
	char *backing;
	enum hsm_disk_format format;
};

enum ev_kind { EV_JOB, EV_LIFECYCLE, EV_RECONNECTED };

struct event {
	enum ev_kind kind;
	char vm[HSM_VM_NAME_MAX + 1];
	char disk[HSM_VMXML_TARGET_MAX];
	int a, b;
};

struct hsm_virt {
	struct hsm_virt_callbacks cb;
	pthread_t thread;
	bool stop;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct domain **doms;
	size_t ndoms;
	struct image *images;
	size_t nimages;
	struct {
		bool armed;
		enum pk_errc code;
		char message[256];
	} fail[FAKE_VIRT_OP_COUNT];
	unsigned calls[FAKE_VIRT_OP_COUNT];
	struct fake_virt_call last[FAKE_VIRT_OP_COUNT];
	bool has_last[FAKE_VIRT_OP_COUNT];
	bool connected;
	unsigned generation;
	bool manual_pivot;
	int next_id;
	struct hsm_virt *current;
	struct event *queue;
	size_t nqueue;
	bool delivering;
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .connected = true };

/* ---- state helpers (F.lock held) ---------------------------------------------- */

static void domain_free(struct domain *d)
{
	for (size_t i = 0; i < d->ndisks; i++) {
		for (size_t k = 0; k < d->disks[i].n; k++) {
			free(d->disks[i].layers[k].path);
		}
		free(d->disks[i].layers);
	}
	free(d->disks);
	free(d->drives);
	free(d);
}

static struct domain *find_dom(const char *name)
{
	for (size_t i = 0; name && i < F.ndoms; i++) {
		if (strcmp(F.doms[i]->name, name) == 0) {
			return F.doms[i];
		}
	}
	return NULL;
}

static struct disk *find_disk(struct domain *d, const char *target)
{
	for (size_t i = 0; d && target && i < d->ndisks; i++) {
		if (strcmp(d->disks[i].target, target) == 0) {
			return &d->disks[i];
		}
	}
	return NULL;
}

static const struct image *find_image(const char *path)
{
	for (size_t i = 0; path && i < F.nimages; i++) {
		if (strcmp(F.images[i].path, path) == 0) {
			return &F.images[i];
		}
	}
	return NULL;
}

static void queue_event(enum ev_kind kind, const char *vm, const char *disk, int a, int b)
{
	struct event ev = { .kind = kind, .a = a, .b = b };

	if (!F.current || !F.connected) {
		return; /* lost, as events are while disconnected */
	}
	snprintf(ev.vm, sizeof(ev.vm), "%s", vm ? vm : "");
	snprintf(ev.disk, sizeof(ev.disk), "%s", disk ? disk : "");
	F.queue = pk_xrealloc(F.queue, (F.nqueue + 1) * sizeof(*F.queue));
	F.queue[F.nqueue++] = ev;
	pthread_cond_broadcast(&F.cond);
}

static int begin(enum fake_virt_op op, struct pk_error *err)
{
	F.calls[op]++;
	if (F.fail[op].armed) {
		F.fail[op].armed = false;
		return pk_error_set(err, F.fail[op].code, 0, "%s", F.fail[op].message);
	}
	if (!F.connected) {
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN,
				    "not connected to libvirt at 'fake' (reconnecting)");
	}
	return 0;
}

static void record(enum fake_virt_op op, const char *vm, const char *disk, const char *base,
		   const char *top, bool flag, uint64_t bandwidth)
{
	struct fake_virt_call *c = &F.last[op];

	memset(c, 0, sizeof(*c));
	snprintf(c->vm, sizeof(c->vm), "%s", vm ? vm : "");
	snprintf(c->disk, sizeof(c->disk), "%s", disk ? disk : "");
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	snprintf(c->top, sizeof(c->top), "%s", top ? top : "");
	c->active = op == FAKE_VIRT_COMMIT && flag;
	c->pivot = op == FAKE_VIRT_JOB_ABORT && flag;
	c->quiesce = op == FAKE_VIRT_SNAPSHOT && flag;
	c->bandwidth = bandwidth;
	F.has_last[op] = true;
}

static int get_dom(const char *name, struct domain **ret, struct pk_error *err)
{
	struct domain *d = find_dom(name);

	if (!d) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' not found",
				    name ? name : "");
	}
	*ret = d;
	return 0;
}

static int get_running_disk(const char *name, const char *target, struct domain **ret_dom,
			    struct disk **ret_disk, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r = get_dom(name, &d, err);

	if (r < 0) {
		return r;
	}
	k = find_disk(d, target);
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

/* Reads a disk's chain from the images, as libvirt does at start. Later
 * chain changes (snapshots, jobs) are kept in memory, as the qcow2 headers
 * would keep them. */
static void probe_chain(struct disk *k)
{
	while (k->n > 1) {
		free(k->layers[--k->n].path);
	}
	for (const struct image *im = find_image(k->layers[0].path);
	     im && im->backing && k->n < CHAIN_MAX; im = find_image(im->backing)) {
		const struct image *b = find_image(im->backing);

		k->layers = pk_xrealloc(k->layers, (k->n + 1) * sizeof(*k->layers));
		k->layers[k->n].path = pk_xstrdup(im->backing);
		k->layers[k->n].format = b ? b->format : HSM_DISK_FORMAT_QCOW2;
		k->layers[k->n].block = k->layers[0].block;
		k->layers[k->n].index = -1;
		k->n++;
	}
}

static void set_running(struct domain *d)
{
	d->state = HSM_VIRT_STATE_RUNNING;
	d->id = ++F.next_id;
	for (size_t i = 0; i < d->ndisks; i++) {
		for (size_t l = 0; l < d->disks[i].n; l++) {
			d->disks[i].layers[l].index = d->next_index++;
		}
	}
}

static void set_shutoff(struct domain *d)
{
	d->state = HSM_VIRT_STATE_SHUTOFF;
	d->id = -1;
	for (size_t i = 0; i < d->ndisks; i++) {
		memset(&d->disks[i].job, 0, sizeof(d->disks[i].job));
		for (size_t l = 0; l < d->disks[i].n; l++) {
			d->disks[i].layers[l].index = -1;
		}
	}
}

static int pos_of_index(const struct disk *k, int index)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->layers[i].index == index) {
			return (int)i;
		}
	}
	return -1;
}

/* Removes layers [from, to) of the chain. */
static void drop_layers(struct disk *k, size_t from, size_t to)
{
	if (to <= from || to > k->n) {
		return;
	}
	for (size_t i = from; i < to; i++) {
		free(k->layers[i].path);
	}
	memmove(&k->layers[from], &k->layers[to], (k->n - to) * sizeof(*k->layers));
	k->n -= to - from;
}

/* Applies a finished job's effect on the chain. */
static void apply_job(struct disk *k)
{
	int base = k->job.base_index >= 0 ? pos_of_index(k, k->job.base_index) : (int)k->n;
	int top;

	switch (k->job.type) {
	case HSM_VIRT_JOB_COMMIT:
		top = pos_of_index(k, k->job.top_index);
		if (top >= 0 && base > top) {
			drop_layers(k, (size_t)top, (size_t)base);
		}
		break;
	case HSM_VIRT_JOB_ACTIVE_COMMIT:
		if (base > 0) {
			drop_layers(k, 0, (size_t)base);
		}
		break;
	case HSM_VIRT_JOB_PULL:
		if (base > 1) {
			drop_layers(k, 1, (size_t)base);
		}
		break;
	default:
		break;
	}
}

static void end_job(const struct domain *d, struct disk *k, enum hsm_virt_job_status status)
{
	enum hsm_virt_job_type type = k->job.type;

	memset(&k->job, 0, sizeof(k->job));
	queue_event(EV_JOB, d->name, k->target, (int)type, (int)status);
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
	return pos_of_index(k, (int)idx);
}

/* ---- the event thread ------------------------------------------------------------- */

static void *event_main(void *arg)
{
	struct hsm_virt *v = arg;

	pthread_mutex_lock(&F.lock);
	while (true) {
		struct event ev;

		while (!v->stop && F.nqueue == 0) {
			pthread_cond_wait(&F.cond, &F.lock);
		}
		if (v->stop) {
			break;
		}
		ev = F.queue[0];
		memmove(F.queue, F.queue + 1, (F.nqueue - 1) * sizeof(*F.queue));
		F.nqueue--;
		F.delivering = true;
		pthread_mutex_unlock(&F.lock);
		if (ev.kind == EV_JOB && v->cb.block_job) {
			v->cb.block_job(v->cb.opaque, ev.vm, ev.disk, (enum hsm_virt_job_type)ev.a,
					(enum hsm_virt_job_status)ev.b);
		} else if (ev.kind == EV_LIFECYCLE && v->cb.lifecycle) {
			v->cb.lifecycle(v->cb.opaque, ev.vm, (enum hsm_virt_lifecycle)ev.a, ev.b);
		} else if (ev.kind == EV_RECONNECTED && v->cb.reconnected) {
			v->cb.reconnected(v->cb.opaque);
		}
		pthread_mutex_lock(&F.lock);
		F.delivering = false;
		pthread_cond_broadcast(&F.cond);
	}
	F.nqueue = 0;
	F.delivering = false;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	return NULL;
}

/* ---- control ---------------------------------------------------------------------- */

void fake_virt_reset(void)
{
	pthread_mutex_lock(&F.lock);
	for (size_t i = 0; i < F.ndoms; i++) {
		domain_free(F.doms[i]);
	}
	free(F.doms);
	for (size_t i = 0; i < F.nimages; i++) {
		free(F.images[i].path);
		free(F.images[i].backing);
	}
	free(F.images);
	free(F.queue);
	F.doms = NULL;
	F.ndoms = 0;
	F.images = NULL;
	F.nimages = 0;
	F.queue = NULL;
	F.nqueue = 0;
	memset(F.fail, 0, sizeof(F.fail));
	memset(F.calls, 0, sizeof(F.calls));
	memset(F.last, 0, sizeof(F.last));
	memset(F.has_last, 0, sizeof(F.has_last));
	F.connected = true;
	F.generation = 0;
	F.manual_pivot = false;
	F.next_id = 0;
	pthread_mutex_unlock(&F.lock);
}

void fake_virt_image_add(const char *path, const char *backing, enum hsm_disk_format format)
{
	pthread_mutex_lock(&F.lock);
	F.images = pk_xrealloc(F.images, (F.nimages + 1) * sizeof(*F.images));
	F.images[F.nimages].path = pk_xstrdup(path);
	F.images[F.nimages].backing = backing ? pk_xstrdup(backing) : NULL;
	F.images[F.nimages].format = format;
	F.nimages++;
	pthread_mutex_unlock(&F.lock);
}

void fake_virt_fail_next(enum fake_virt_op op, enum pk_errc code, const char *message)
{
	pthread_mutex_lock(&F.lock);
	F.fail[op].armed = true;
	F.fail[op].code = code;
	snprintf(F.fail[op].message, sizeof(F.fail[op].message), "%s",
		 message ? message : "injected failure");
	pthread_mutex_unlock(&F.lock);
}

unsigned fake_virt_calls(enum fake_virt_op op)
{
	unsigned n;

	pthread_mutex_lock(&F.lock);
	n = F.calls[op];
	pthread_mutex_unlock(&F.lock);
	return n;
}

bool fake_virt_last_call(enum fake_virt_op op, struct fake_virt_call *ret)
{
	bool has;

	pthread_mutex_lock(&F.lock);
	has = F.has_last[op];
	if (has) {
		*ret = F.last[op];
	}
	pthread_mutex_unlock(&F.lock);
	return has;
}

void fake_virt_domain_add_foreign(const char *name)
{
	struct domain *d = pk_xcalloc(1, sizeof(*d));

	snprintf(d->name, sizeof(d->name), "%s", name);
	pk_uuid_generate(d->uuid);
	snprintf(d->type, sizeof(d->type), "kvm");
	d->next_index = 1;
	pthread_mutex_lock(&F.lock);
	set_running(d);
	F.doms = pk_xrealloc(F.doms, (F.ndoms + 1) * sizeof(*F.doms));
	F.doms[F.ndoms++] = d;
	pthread_mutex_unlock(&F.lock);
}

bool fake_virt_domain_exists(const char *name)
{
	bool e;

	pthread_mutex_lock(&F.lock);
	e = find_dom(name) != NULL;
	pthread_mutex_unlock(&F.lock);
	return e;
}

int fake_virt_domain_set_state(const char *name, enum hsm_virt_state state)
{
	struct domain *d = NULL;
	int r = -ENOENT;

	pthread_mutex_lock(&F.lock);
	d = find_dom(name);
	if (d) {
		r = 0;
		if (state == HSM_VIRT_STATE_SHUTOFF && d->state != HSM_VIRT_STATE_SHUTOFF) {
			set_shutoff(d);
			queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STOPPED, 0);
		} else if (state == HSM_VIRT_STATE_RUNNING && d->state == HSM_VIRT_STATE_SHUTOFF) {
			set_running(d);
			queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
		} else if (state == HSM_VIRT_STATE_RUNNING && d->state == HSM_VIRT_STATE_PAUSED) {
			d->state = state;
			queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_RESUMED, 0);
		} else if (state == HSM_VIRT_STATE_PAUSED && d->state == HSM_VIRT_STATE_RUNNING) {
			d->state = state;
			queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_SUSPENDED, 0);
		} else if (state != d->state) {
			r = -EINVAL;
		}
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

void fake_virt_set_guest_agent(const char *name, bool responding)
{
	struct domain *d = NULL;

	pthread_mutex_lock(&F.lock);
	d = find_dom(name);
	if (d) {
		d->agent = responding;
	}
	pthread_mutex_unlock(&F.lock);
}

char *fake_virt_chain(const char *name, const char *disk)
{
	struct disk *k = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	pthread_mutex_lock(&F.lock);
	k = find_disk(find_dom(name), disk);
	if (k) {
		f = open_memstream(&out, &len);
		for (size_t i = 0; f && i < k->n; i++) {
			fprintf(f, "%s%s", i ? " <- " : "", k->layers[i].path);
		}
		if (f) {
			fclose(f);
		}
	}
	pthread_mutex_unlock(&F.lock);
	return out;
}

static int control_job(const char *name, const char *disk, struct domain **ret_dom,
		       struct disk **ret_disk)
{
	struct domain *d = find_dom(name);
	struct disk *k = find_disk(d, disk);

	if (!k) {
		return -ENOENT;
	}
	if (!k->job.on) {
		return -ESRCH;
	}
	*ret_dom = d;
	*ret_disk = k;
	return 0;
}

int fake_virt_job_progress(const char *name, const char *disk, uint64_t cur, uint64_t end)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&F.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0) {
		k->job.cur = cur;
		k->job.end = end;
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int fake_virt_job_ready(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&F.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0 && k->job.type != HSM_VIRT_JOB_ACTIVE_COMMIT) {
		r = -EINVAL;
	}
	if (r == 0) {
		k->job.mirror = HSM_VMXML_MIRROR_READY;
		k->job.cur = k->job.end;
		queue_event(EV_JOB, d->name, k->target, (int)k->job.type, HSM_VIRT_JOB_READY);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int fake_virt_job_complete(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&F.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0 && k->job.type == HSM_VIRT_JOB_ACTIVE_COMMIT) {
		r = -EINVAL;
	}
	if (r == 0) {
		apply_job(k);
		end_job(d, k, HSM_VIRT_JOB_COMPLETED);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int fake_virt_job_fail(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&F.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0) {
		end_job(d, k, HSM_VIRT_JOB_FAILED);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

void fake_virt_set_manual_pivot(bool manual)
{
	pthread_mutex_lock(&F.lock);
	F.manual_pivot = manual;
	pthread_mutex_unlock(&F.lock);
}

int fake_virt_pivot_finish(const char *name, const char *disk, bool success)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&F.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0 && k->job.mirror != HSM_VMXML_MIRROR_PIVOTING) {
		r = -EINVAL;
	}
	if (r == 0 && success) {
		apply_job(k);
		end_job(d, k, HSM_VIRT_JOB_COMPLETED);
	} else if (r == 0) {
		k->job.mirror = HSM_VMXML_MIRROR_READY;
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

void fake_virt_disconnect(void)
{
	pthread_mutex_lock(&F.lock);
	F.connected = false;
	F.nqueue = 0; /* undelivered events are lost with the connection */
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
}

void fake_virt_reconnect(void)
{
	pthread_mutex_lock(&F.lock);
	if (!F.connected) {
		F.connected = true;
		F.generation++;
		queue_event(EV_RECONNECTED, NULL, NULL, 0, 0);
	}
	pthread_mutex_unlock(&F.lock);
}

void fake_virt_events_flush(void)
{
	pthread_mutex_lock(&F.lock);
	while (F.current && (F.nqueue > 0 || F.delivering)) {
		pthread_cond_wait(&F.cond, &F.lock);
	}
	pthread_mutex_unlock(&F.lock);
}

/* ---- hsm_virt: connection ------------------------------------------------------------ */

int hsm_virt_new(const struct hsm_virt_config *cfg, const struct hsm_virt_callbacks *cb,
		 struct hsm_virt **ret, struct pk_error *err)
{
	struct hsm_virt *v;
	int r;

	(void)cfg;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_NEW, err);
	if (r == 0 && F.current) {
		r = pk_error_set(err, PK_E_INTERNAL, EBUSY, "fake_virt: a struct hsm_virt exists");
	}
	if (r < 0) {
		pthread_mutex_unlock(&F.lock);
		return r;
	}
	v = pk_xcalloc(1, sizeof(*v));
	if (cb) {
		v->cb = *cb;
	}
	F.current = v;
	F.generation = 1;
	F.nqueue = 0;
	pthread_mutex_unlock(&F.lock);
	if (pthread_create(&v->thread, NULL, event_main, v) != 0) {
		abort();
	}
	*ret = v;
	return 0;
}

void hsm_virt_free(struct hsm_virt *v)
{
	if (!v) {
		return;
	}
	pthread_mutex_lock(&F.lock);
	v->stop = true;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	pthread_join(v->thread, NULL);
	pthread_mutex_lock(&F.lock);
	if (F.current == v) {
		F.current = NULL;
	}
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	free(v);
}

bool hsm_virt_connected(struct hsm_virt *v)
{
	bool c;

	(void)v;
	pthread_mutex_lock(&F.lock);
	c = F.connected;
	pthread_mutex_unlock(&F.lock);
	return c;
}

unsigned hsm_virt_generation(struct hsm_virt *v)
{
	unsigned g;

	(void)v;
	pthread_mutex_lock(&F.lock);
	g = F.generation;
	pthread_mutex_unlock(&F.lock);
	return g;
}

/* ---- hsm_virt: domains ----------------------------------------------------------------- */

int hsm_virt_domain_create(struct hsm_virt *v, const char *xml,
			   char ret_uuid[PK_UUID_BUFLEN], struct pk_error *err)
{
	struct hsm_vmxml_domain p;
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_CREATE, err);
	if (r < 0) {
		goto out;
	}
	r = hsm_vmxml_domain_parse(xml, &p, err);
	if (r < 0) {
		if (err) {
			err->code = PK_E_INVALID_ARGUMENT;
		}
		goto out;
	}
	if (find_dom(p.name)) {
		r = pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST, "VM '%s' already exists", p.name);
		hsm_vmxml_domain_release(&p);
		goto out;
	}
	d = pk_xcalloc(1, sizeof(*d));
	memcpy(d->name, p.name, sizeof(d->name));
	memcpy(d->type, p.type, sizeof(d->type));
	if (p.uuid[0]) {
		memcpy(d->uuid, p.uuid, sizeof(d->uuid));
	} else {
		pk_uuid_generate(d->uuid);
	}
	d->next_index = 1;
	d->has_meta = p.has_metadata;
	d->drives = pk_steal_pointer(&p.drives);
	d->ndrives = p.ndrives;
	d->disks = pk_xcalloc(p.ndisks ? p.ndisks : 1, sizeof(*d->disks));
	d->ndisks = p.ndisks;
	for (size_t i = 0; i < p.ndisks; i++) {
		struct disk *k = &d->disks[i];

		memcpy(k->target, p.disks[i].target, sizeof(k->target));
		memcpy(k->bus, p.disks[i].bus, sizeof(k->bus));
		k->layers = pk_xcalloc(1, sizeof(*k->layers));
		k->n = p.disks[i].nlayers ? 1 : 0;
		if (k->n) {
			k->layers[0].path = pk_xstrdup(p.disks[i].layers[0].path);
			k->layers[0].format = p.disks[i].layers[0].format;
			k->layers[0].block = p.disks[i].layers[0].block;
		}
	}
	hsm_vmxml_domain_release(&p);
	for (size_t i = 0; i < d->ndisks; i++) {
		if (d->disks[i].n) {
			probe_chain(&d->disks[i]);
		}
	}
	set_running(d);
	F.doms = pk_xrealloc(F.doms, (F.ndoms + 1) * sizeof(*F.doms));
	F.doms[F.ndoms++] = d;
	queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_DEFINED, 0);
	queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
	if (ret_uuid) {
		memcpy(ret_uuid, d->uuid, PK_UUID_BUFLEN);
	}
	record(FAKE_VIRT_CREATE, d->name, NULL, NULL, NULL, false, 0);
out:
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_domain_start(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_START, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0 && d->state != HSM_VIRT_STATE_SHUTOFF) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY,
				 "cannot start VM '%s': Requested operation is not valid: "
				 "domain is already running", name);
	}
	if (r == 0) {
		set_running(d);
		queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
		record(FAKE_VIRT_START, name, NULL, NULL, NULL, false, 0);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_domain_destroy(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_DESTROY, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0) {
		if (d->state != HSM_VIRT_STATE_SHUTOFF) {
			set_shutoff(d);
			queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STOPPED, 1);
		}
		queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_UNDEFINED, 0);
		record(FAKE_VIRT_DESTROY, name, NULL, NULL, NULL, false, 0);
		for (size_t i = 0; i < F.ndoms; i++) {
			if (F.doms[i] == d) {
				F.doms[i] = F.doms[--F.ndoms];
				break;
			}
		}
		domain_free(d);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void hsm_virt_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++) {
		free(names[i]);
	}
	free(names);
}

int hsm_virt_domain_list(struct hsm_virt *v, char ***ret_names, size_t *ret_n,
			 struct pk_error *err)
{
	char **names;
	size_t n = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_LIST, err);
	if (r == 0) {
		names = pk_xcalloc(F.ndoms + 1, sizeof(*names));
		for (size_t i = 0; i < F.ndoms; i++) {
			if (F.doms[i]->has_meta) {
				names[n++] = pk_xstrdup(F.doms[i]->name);
			}
		}
		qsort(names, n, sizeof(*names), cmp_names);
		*ret_names = names;
		*ret_n = n;
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

static void put_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static void put_source(FILE *f, const struct layer *l, bool with_index)
{
	fprintf(f, "<source %s='", l->block ? "dev" : "file");
	put_esc(f, l->path);
	fputc('\'', f);
	if (with_index && l->index >= 0) {
		fprintf(f, " index='%d'", l->index);
	}
	fputs("><seclabel model='dac' relabel='no'/></source>\n", f);
}

/* The domain's XML as libvirt 9.0 writes it (the parts we read). */
static char *domain_xml(const struct domain *d)
{
	bool live = d->state != HSM_VIRT_STATE_SHUTOFF;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f) {
		abort();
	}
	fprintf(f, "<domain type='%s'", d->type[0] ? d->type : "qemu");
	if (live) {
		fprintf(f, " id='%d'", d->id);
	}
	fprintf(f, ">\n  <name>");
	put_esc(f, d->name);
	fprintf(f, "</name>\n  <uuid>%s</uuid>\n", d->uuid);
	if (d->has_meta) {
		fprintf(f, "  <metadata>\n    <pk:vm xmlns:pk=\"%s\">\n", HSM_VMXML_NS);
		for (size_t i = 0; i < d->ndrives; i++) {
			fprintf(f, "      <pk:drive target=\"%s\" domain=\"%s\" image=\"%s\" "
				   "volume=\"%s\"/>\n",
				d->drives[i].target, d->drives[i].domain_id, d->drives[i].image_id,
				d->drives[i].volume_id);
		}
		fprintf(f, "    </pk:vm>\n  </metadata>\n");
	}
	fprintf(f, "  <devices>\n");
	for (size_t i = 0; i < d->ndisks; i++) {
		const struct disk *k = &d->disks[i];
		const struct layer *leaf = k->n ? &k->layers[0] : NULL;

		fprintf(f, "    <disk type='%s' device='disk'>\n",
			leaf && leaf->block ? "block" : "file");
		fprintf(f, "      <driver name='qemu' type='%s' cache='none'/>\n",
			hsm_disk_format_name(leaf ? leaf->format : HSM_DISK_FORMAT_RAW));
		if (leaf) {
			fputs("      ", f);
			put_source(f, leaf, live);
		}
		if (live && leaf) {
			for (size_t l = 1; l < k->n; l++) {
				fprintf(f, "      <backingStore type='%s' index='%d'>\n",
					k->layers[l].block ? "block" : "file", k->layers[l].index);
				fprintf(f, "      <format type='%s'/>\n",
					hsm_disk_format_name(k->layers[l].format));
				fputs("      ", f);
				put_source(f, &k->layers[l], false);
			}
			fprintf(f, "      <backingStore/>\n");
			for (size_t l = 1; l < k->n; l++) {
				fprintf(f, "      </backingStore>\n");
			}
		}
		if (live && k->job.on && k->job.type == HSM_VIRT_JOB_ACTIVE_COMMIT) {
			int bpos = pos_of_index(k, k->job.base_index);
			const struct layer *base = bpos >= 0 ? &k->layers[bpos] : NULL;
			const char *ready = k->job.mirror == HSM_VMXML_MIRROR_READY ? " ready='yes'"
					    : k->job.mirror == HSM_VMXML_MIRROR_PIVOTING
						    ? " ready='pivot'"
						    : "";

			fprintf(f, "      <mirror type='%s' job='active-commit'%s>\n",
				base && base->block ? "block" : "file", ready);
			if (base) {
				fprintf(f, "      <format type='%s'/>\n",
					hsm_disk_format_name(base->format));
				fputs("      ", f);
				put_source(f, base, true);
			}
			fprintf(f, "      </mirror>\n");
		}
		fprintf(f, "      <target dev='%s' bus='%s'/>\n    </disk>\n", k->target,
			k->bus[0] ? k->bus : "virtio");
	}
	fprintf(f, "  </devices>\n</domain>\n");
	fclose(f);
	return out;
}

int hsm_virt_domain_xml(struct hsm_virt *v, const char *name, char **ret_xml,
			struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_XML, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0) {
		*ret_xml = domain_xml(d);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_domain_state(struct hsm_virt *v, const char *name,
			  enum hsm_virt_state *ret_state, int *ret_reason,
			  struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_STATE, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0) {
		*ret_state = d->state;
		if (ret_reason) {
			*ret_reason = 0;
		}
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_disk_source_set(struct hsm_virt *v, const char *name, const char *disk,
			     const char *path, enum hsm_disk_format format, const char *volume_id,
			     struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	size_t di = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_DISK_SOURCE_SET, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0 && d->state != HSM_VIRT_STATE_SHUTOFF) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "VM '%s' runs: its disk source changes only while it is shut off",
				 name);
	}
	if (r == 0) {
		k = find_disk(d, disk);
		while (di < d->ndrives && strcmp(d->drives[di].target, disk ? disk : "")) {
			di++;
		}
		if (!k || di == d->ndrives) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "the domain has no disk '%s' with a source", disk ? disk : "");
		}
	}
	if (r == 0 && (!path || path[0] != '/' || !pk_uuid_valid(volume_id))) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "bad path or volume id");
	}
	if (r == 0) {
		free(k->layers[0].path);
		k->layers[0].path = pk_xstrdup(path);
		k->layers[0].format = format;
		probe_chain(k);
		snprintf(d->drives[di].volume_id, sizeof(d->drives[di].volume_id), "%s", volume_id);
		record(FAKE_VIRT_DISK_SOURCE_SET, name, disk, NULL, path, false, 0);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_metadata_get(struct hsm_virt *v, const char *name, char **ret_xml,
			  struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_METADATA_GET, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0 && !d->has_meta) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no poolkeeper metadata",
				 name);
	}
	if (r == 0) {
		r = hsm_vmxml_metadata_build(d->drives, d->ndrives, ret_xml, err);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_metadata_set(struct hsm_virt *v, const char *name, const char *xml,
			  struct pk_error *err)
{
	struct hsm_drive_id *drives = NULL;
	struct domain *d = NULL;
	size_t n = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_METADATA_SET, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
	}
	if (r == 0) {
		r = hsm_vmxml_metadata_parse(xml, &drives, &n, err);
		if (r < 0 && err) {
			err->code = PK_E_INVALID_ARGUMENT;
		}
	}
	if (r == 0) {
		free(d->drives);
		d->drives = drives;
		d->ndrives = n;
		d->has_meta = true;
		record(FAKE_VIRT_METADATA_SET, name, NULL, NULL, NULL, false, 0);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
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
			k = find_disk(d, (const char *)name);
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
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_SNAPSHOT, err);
	if (r == 0) {
		r = get_dom(name, &d, err);
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
		record(FAKE_VIRT_SNAPSHOT, name, NULL, NULL, NULL, quiesce, 0);
	}
	pthread_mutex_unlock(&F.lock);
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
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_COMMIT, err);
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
		record(FAKE_VIRT_COMMIT, name, disk, base, top, active, bandwidth);
	}
out:
	pthread_mutex_unlock(&F.lock);
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
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_PULL, err);
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
		record(FAKE_VIRT_PULL, name, disk, base, NULL, false, bandwidth);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_block_job_info(struct hsm_virt *v, const char *name, const char *disk,
			    struct hsm_virt_job_info *ret, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_JOB_INFO, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0) {
		memset(ret, 0, sizeof(*ret));
		ret->active = k->job.on;
		if (k->job.on) {
			ret->type = k->job.type;
			ret->cur = k->job.cur;
			ret->end = k->job.end;
			ret->bandwidth = k->job.bandwidth;
		}
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

int hsm_virt_block_job_abort(struct hsm_virt *v, const char *name, const char *disk,
			     bool pivot, struct pk_error *err)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_JOB_ABORT, err);
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
		record(FAKE_VIRT_JOB_ABORT, name, disk, NULL, NULL, pivot, 0);
		if (pivot && F.manual_pivot) {
			k->job.mirror = HSM_VMXML_MIRROR_PIVOTING;
		} else if (pivot) {
			apply_job(k);
			end_job(d, k, HSM_VIRT_JOB_COMPLETED);
		} else {
			end_job(d, k, HSM_VIRT_JOB_CANCELED);
		}
	}
	pthread_mutex_unlock(&F.lock);
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
	pthread_mutex_lock(&F.lock);
	r = begin(FAKE_VIRT_JOB_SET_BANDWIDTH, err);
	if (r == 0) {
		r = get_running_disk(name, disk, &d, &k, err);
	}
	if (r == 0 && !k->job.on) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ESRCH,
				 "invalid argument: disk %s does not have an active block job",
				 disk);
	}
	if (r == 0) {
		k->job.bandwidth = bandwidth;
		record(FAKE_VIRT_JOB_SET_BANDWIDTH, name, disk, NULL, NULL, false, bandwidth);
	}
	pthread_mutex_unlock(&F.lock);
	return r;
}

/* ---- names (the same as hsm/virt.c) --------------------------------------------------- */

const char *hsm_virt_job_type_name(enum hsm_virt_job_type type)
{
	static const char *const names[] = { "unknown", "pull", "copy", "commit",
					     "active-commit", "backup" };

	return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

const char *hsm_virt_job_status_name(enum hsm_virt_job_status status)
{
	static const char *const names[] = { "completed", "failed", "canceled", "ready" };

	return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

const char *hsm_virt_lifecycle_name(enum hsm_virt_lifecycle event)
{
	static const char *const names[] = { "defined", "undefined", "started",
					     "suspended", "resumed", "stopped",
					     "shutdown", "pmsuspended", "crashed" };

	return (unsigned)event < sizeof(names) / sizeof(names[0]) ? names[event] : "unknown";
}

const char *hsm_virt_state_name(enum hsm_virt_state state)
{
	static const char *const names[] = { "nostate", "running", "blocked", "paused",
					     "shutdown", "shutoff", "crashed", "pmsuspended" };

	return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}
