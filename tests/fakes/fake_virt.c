/* An in-memory libvirtd behind hsm/virt.h (see fake_virt.h): its state,
 * the test controls, the event thread and the connection. */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uuid.h"
#include "common/xalloc.h"
#include "tests/fakes/fake_virt_state.h"

struct hsm_virt {
	struct hsm_virt_callbacks cb;
	pthread_t thread;
	bool stop;
};

struct fake_virtd fake_virtd = { .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cond = PTHREAD_COND_INITIALIZER,
				 .connected = true };

/* ---- state helpers (fake_virtd.lock held) ------------------------------------- */

void fake_virtd_domain_free(struct domain *d)
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

struct domain *fake_virtd_find_dom(const char *name)
{
	for (size_t i = 0; name && i < fake_virtd.ndoms; i++) {
		if (strcmp(fake_virtd.doms[i]->name, name) == 0) {
			return fake_virtd.doms[i];
		}
	}
	return NULL;
}

struct disk *fake_virtd_find_disk(struct domain *d, const char *target)
{
	for (size_t i = 0; d && target && i < d->ndisks; i++) {
		if (strcmp(d->disks[i].target, target) == 0) {
			return &d->disks[i];
		}
	}
	return NULL;
}

void fake_virtd_queue_event(enum ev_kind kind, const char *vm, const char *disk, int a, int b)
{
	struct event ev = { .kind = kind, .a = a, .b = b };

	if (!fake_virtd.current || !fake_virtd.connected) {
		return; /* lost, as events are while disconnected */
	}
	snprintf(ev.vm, sizeof(ev.vm), "%s", vm ? vm : "");
	snprintf(ev.disk, sizeof(ev.disk), "%s", disk ? disk : "");
	fake_virtd.queue = pk_xrealloc(fake_virtd.queue,
				       (fake_virtd.nqueue + 1) * sizeof(*fake_virtd.queue));
	fake_virtd.queue[fake_virtd.nqueue++] = ev;
	pthread_cond_broadcast(&fake_virtd.cond);
}

int fake_virtd_begin(enum fake_virt_op op, struct pk_error *err)
{
	fake_virtd.calls[op]++;
	if (fake_virtd.fail[op].armed) {
		fake_virtd.fail[op].armed = false;
		return pk_error_set(err, fake_virtd.fail[op].code, 0, "%s",
				    fake_virtd.fail[op].message);
	}
	if (!fake_virtd.connected) {
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN,
				    "not connected to libvirt at 'fake' (reconnecting)");
	}
	return 0;
}

void fake_virtd_record(enum fake_virt_op op, const char *vm, const char *disk, const char *base,
		       const char *top, bool flag, uint64_t bandwidth)
{
	struct fake_virt_call *c = &fake_virtd.last[op];

	memset(c, 0, sizeof(*c));
	snprintf(c->vm, sizeof(c->vm), "%s", vm ? vm : "");
	snprintf(c->disk, sizeof(c->disk), "%s", disk ? disk : "");
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	snprintf(c->top, sizeof(c->top), "%s", top ? top : "");
	c->active = op == FAKE_VIRT_COMMIT && flag;
	c->pivot = op == FAKE_VIRT_JOB_ABORT && flag;
	c->quiesce = op == FAKE_VIRT_SNAPSHOT && flag;
	c->bandwidth = bandwidth;
	fake_virtd.has_last[op] = true;
}

int fake_virtd_get_dom(const char *name, struct domain **ret, struct pk_error *err)
{
	struct domain *d = fake_virtd_find_dom(name);

	if (!d) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' not found",
				    name ? name : "");
	}
	*ret = d;
	return 0;
}

void fake_virtd_set_running(struct domain *d)
{
	d->state = HSM_VIRT_STATE_RUNNING;
	d->id = ++fake_virtd.next_id;
	for (size_t i = 0; i < d->ndisks; i++) {
		for (size_t l = 0; l < d->disks[i].n; l++) {
			d->disks[i].layers[l].index = d->next_index++;
		}
	}
}

void fake_virtd_set_shutoff(struct domain *d)
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

int fake_virtd_pos_of_index(const struct disk *k, int index)
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
void fake_virtd_apply_job(struct disk *k)
{
	int base = k->job.base_index >= 0 ? fake_virtd_pos_of_index(k, k->job.base_index)
					   : (int)k->n;
	int top;

	switch (k->job.type) {
	case HSM_VIRT_JOB_COMMIT:
		top = fake_virtd_pos_of_index(k, k->job.top_index);
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

void fake_virtd_end_job(const struct domain *d, struct disk *k, enum hsm_virt_job_status status)
{
	enum hsm_virt_job_type type = k->job.type;

	memset(&k->job, 0, sizeof(k->job));
	fake_virtd_queue_event(EV_JOB, d->name, k->target, (int)type, (int)status);
}

/* ---- the event thread ------------------------------------------------------------- */

static void *event_main(void *arg)
{
	struct hsm_virt *v = arg;

	pthread_mutex_lock(&fake_virtd.lock);
	while (true) {
		struct event ev;

		while (!v->stop && fake_virtd.nqueue == 0) {
			pthread_cond_wait(&fake_virtd.cond, &fake_virtd.lock);
		}
		if (v->stop) {
			break;
		}
		ev = fake_virtd.queue[0];
		memmove(fake_virtd.queue, fake_virtd.queue + 1,
			(fake_virtd.nqueue - 1) * sizeof(*fake_virtd.queue));
		fake_virtd.nqueue--;
		fake_virtd.delivering = true;
		pthread_mutex_unlock(&fake_virtd.lock);
		if (ev.kind == EV_JOB && v->cb.block_job) {
			v->cb.block_job(v->cb.opaque, ev.vm, ev.disk, (enum hsm_virt_job_type)ev.a,
					(enum hsm_virt_job_status)ev.b);
		} else if (ev.kind == EV_LIFECYCLE && v->cb.lifecycle) {
			v->cb.lifecycle(v->cb.opaque, ev.vm, (enum hsm_virt_lifecycle)ev.a, ev.b);
		} else if (ev.kind == EV_RECONNECTED && v->cb.reconnected) {
			v->cb.reconnected(v->cb.opaque);
		}
		pthread_mutex_lock(&fake_virtd.lock);
		fake_virtd.delivering = false;
		pthread_cond_broadcast(&fake_virtd.cond);
	}
	fake_virtd.nqueue = 0;
	fake_virtd.delivering = false;
	pthread_cond_broadcast(&fake_virtd.cond);
	pthread_mutex_unlock(&fake_virtd.lock);
	return NULL;
}

/* ---- control ---------------------------------------------------------------------- */

void fake_virt_reset(void)
{
	pthread_mutex_lock(&fake_virtd.lock);
	for (size_t i = 0; i < fake_virtd.ndoms; i++) {
		fake_virtd_domain_free(fake_virtd.doms[i]);
	}
	free(fake_virtd.doms);
	for (size_t i = 0; i < fake_virtd.nimages; i++) {
		free(fake_virtd.images[i].path);
		free(fake_virtd.images[i].backing);
	}
	free(fake_virtd.images);
	free(fake_virtd.queue);
	free(fake_virtd.created_xml);
	fake_virtd.created_xml = NULL;
	fake_virtd.doms = NULL;
	fake_virtd.ndoms = 0;
	fake_virtd.images = NULL;
	fake_virtd.nimages = 0;
	fake_virtd.queue = NULL;
	fake_virtd.nqueue = 0;
	memset(fake_virtd.fail, 0, sizeof(fake_virtd.fail));
	memset(fake_virtd.calls, 0, sizeof(fake_virtd.calls));
	memset(fake_virtd.last, 0, sizeof(fake_virtd.last));
	memset(fake_virtd.has_last, 0, sizeof(fake_virtd.has_last));
	fake_virtd.connected = true;
	fake_virtd.generation = 0;
	fake_virtd.manual_pivot = false;
	fake_virtd.next_id = 0;
	pthread_mutex_unlock(&fake_virtd.lock);
}

void fake_virt_image_add(const char *path, const char *backing, enum hsm_disk_format format)
{
	pthread_mutex_lock(&fake_virtd.lock);
	fake_virtd.images = pk_xrealloc(fake_virtd.images,
					(fake_virtd.nimages + 1) * sizeof(*fake_virtd.images));
	fake_virtd.images[fake_virtd.nimages].path = pk_xstrdup(path);
	fake_virtd.images[fake_virtd.nimages].backing = backing ? pk_xstrdup(backing) : NULL;
	fake_virtd.images[fake_virtd.nimages].format = format;
	fake_virtd.nimages++;
	pthread_mutex_unlock(&fake_virtd.lock);
}

void fake_virt_fail_next(enum fake_virt_op op, enum pk_errc code, const char *message)
{
	pthread_mutex_lock(&fake_virtd.lock);
	fake_virtd.fail[op].armed = true;
	fake_virtd.fail[op].code = code;
	snprintf(fake_virtd.fail[op].message, sizeof(fake_virtd.fail[op].message), "%s",
		 message ? message : "injected failure");
	pthread_mutex_unlock(&fake_virtd.lock);
}

unsigned fake_virt_calls(enum fake_virt_op op)
{
	unsigned n;

	pthread_mutex_lock(&fake_virtd.lock);
	n = fake_virtd.calls[op];
	pthread_mutex_unlock(&fake_virtd.lock);
	return n;
}

bool fake_virt_last_call(enum fake_virt_op op, struct fake_virt_call *ret)
{
	bool has;

	pthread_mutex_lock(&fake_virtd.lock);
	has = fake_virtd.has_last[op];
	if (has) {
		*ret = fake_virtd.last[op];
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return has;
}

void fake_virt_domain_add_foreign(const char *name)
{
	struct domain *d = pk_xcalloc(1, sizeof(*d));

	snprintf(d->name, sizeof(d->name), "%s", name);
	pk_uuid_generate(d->uuid);
	snprintf(d->type, sizeof(d->type), "kvm");
	d->next_index = 1;
	pthread_mutex_lock(&fake_virtd.lock);
	fake_virtd_set_running(d);
	fake_virtd.doms = pk_xrealloc(fake_virtd.doms,
				      (fake_virtd.ndoms + 1) * sizeof(*fake_virtd.doms));
	fake_virtd.doms[fake_virtd.ndoms++] = d;
	pthread_mutex_unlock(&fake_virtd.lock);
}

bool fake_virt_domain_exists(const char *name)
{
	bool e;

	pthread_mutex_lock(&fake_virtd.lock);
	e = fake_virtd_find_dom(name) != NULL;
	pthread_mutex_unlock(&fake_virtd.lock);
	return e;
}

int fake_virt_domain_set_state(const char *name, enum hsm_virt_state state)
{
	struct domain *d = NULL;
	int r = -ENOENT;

	pthread_mutex_lock(&fake_virtd.lock);
	d = fake_virtd_find_dom(name);
	if (d) {
		r = 0;
		if (state == HSM_VIRT_STATE_SHUTOFF && d->state != HSM_VIRT_STATE_SHUTOFF) {
			fake_virtd_set_shutoff(d);
			fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STOPPED, 0);
		} else if (state == HSM_VIRT_STATE_RUNNING && d->state == HSM_VIRT_STATE_SHUTOFF) {
			fake_virtd_set_running(d);
			fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
		} else if (state == HSM_VIRT_STATE_RUNNING && d->state == HSM_VIRT_STATE_PAUSED) {
			d->state = state;
			fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_RESUMED, 0);
		} else if (state == HSM_VIRT_STATE_PAUSED && d->state == HSM_VIRT_STATE_RUNNING) {
			d->state = state;
			fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_SUSPENDED,
					       0);
		} else if (state != d->state) {
			r = -EINVAL;
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

void fake_virt_set_guest_agent(const char *name, bool responding)
{
	struct domain *d = NULL;

	pthread_mutex_lock(&fake_virtd.lock);
	d = fake_virtd_find_dom(name);
	if (d) {
		d->agent = responding;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

char *fake_virt_chain(const char *name, const char *disk)
{
	struct disk *k = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	pthread_mutex_lock(&fake_virtd.lock);
	k = fake_virtd_find_disk(fake_virtd_find_dom(name), disk);
	if (k) {
		f = open_memstream(&out, &len);
		for (size_t i = 0; f && i < k->n; i++) {
			fprintf(f, "%s%s", i ? " <- " : "", k->layers[i].path);
		}
		if (f) {
			fclose(f);
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return out;
}

static int control_job(const char *name, const char *disk, struct domain **ret_dom,
		       struct disk **ret_disk)
{
	struct domain *d = fake_virtd_find_dom(name);
	struct disk *k = fake_virtd_find_disk(d, disk);

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

	pthread_mutex_lock(&fake_virtd.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0) {
		k->job.cur = cur;
		k->job.end = end;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int fake_virt_job_ready(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&fake_virtd.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0 && k->job.type != HSM_VIRT_JOB_ACTIVE_COMMIT) {
		r = -EINVAL;
	}
	if (r == 0) {
		k->job.mirror = HSM_VMXML_MIRROR_READY;
		k->job.cur = k->job.end;
		fake_virtd_queue_event(EV_JOB, d->name, k->target, (int)k->job.type,
				       HSM_VIRT_JOB_READY);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int fake_virt_job_complete(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&fake_virtd.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0 && k->job.type == HSM_VIRT_JOB_ACTIVE_COMMIT) {
		r = -EINVAL;
	}
	if (r == 0) {
		fake_virtd_apply_job(k);
		fake_virtd_end_job(d, k, HSM_VIRT_JOB_COMPLETED);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int fake_virt_job_fail(const char *name, const char *disk)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&fake_virtd.lock);
	r = control_job(name, disk, &d, &k);
	if (r == 0) {
		fake_virtd_end_job(d, k, HSM_VIRT_JOB_FAILED);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

void fake_virt_set_manual_pivot(bool manual)
{
	pthread_mutex_lock(&fake_virtd.lock);
	fake_virtd.manual_pivot = manual;
	pthread_mutex_unlock(&fake_virtd.lock);
}

/* control_job of a disk whose pivot is pending (-EINVAL when none). Lock held. */
static int pivot_job(const char *name, const char *disk, struct domain **ret_dom,
		     struct disk **ret_disk)
{
	int r = control_job(name, disk, ret_dom, ret_disk);

	if (r == 0 && (*ret_disk)->job.mirror != HSM_VMXML_MIRROR_PIVOTING) {
		r = -EINVAL;
	}
	return r;
}

int fake_virt_pivot_finish(const char *name, const char *disk, bool success)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&fake_virtd.lock);
	r = pivot_job(name, disk, &d, &k);
	if (r == 0 && success) {
		if (!k->job.applied) {
			fake_virtd_apply_job(k);
		}
		fake_virtd_end_job(d, k, HSM_VIRT_JOB_COMPLETED);
	} else if (r == 0) {
		k->job.mirror = HSM_VMXML_MIRROR_READY;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int fake_virt_pivot_show(const char *name, const char *disk, enum fake_virt_pivot_view view)
{
	struct domain *d = NULL;
	struct disk *k = NULL;
	int r;

	pthread_mutex_lock(&fake_virtd.lock);
	r = pivot_job(name, disk, &d, &k);
	if (r == 0) {
		switch (view) {
		case FAKE_VIRT_PIVOT_SWITCHED:
			if (!k->job.applied) {
				fake_virtd_apply_job(k);
				k->job.applied = true;
			}
			break;
		case FAKE_VIRT_PIVOT_JOB_GONE:
			k->job.hidden = true;
			break;
		case FAKE_VIRT_PIVOT_DROPPED:
			memset(&k->job, 0, sizeof(k->job));
			break;
		case FAKE_VIRT_PIVOT_FOREIGN:
			drop_layers(k, 0, k->n - 1);
			fake_virtd_end_job(d, k, HSM_VIRT_JOB_COMPLETED);
			break;
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

void fake_virt_disconnect(void)
{
	pthread_mutex_lock(&fake_virtd.lock);
	fake_virtd.connected = false;
	fake_virtd.nqueue = 0; /* undelivered events are lost with the connection */
	pthread_cond_broadcast(&fake_virtd.cond);
	pthread_mutex_unlock(&fake_virtd.lock);
}

void fake_virt_reconnect(void)
{
	pthread_mutex_lock(&fake_virtd.lock);
	if (!fake_virtd.connected) {
		fake_virtd.connected = true;
		fake_virtd.generation++;
		fake_virtd_queue_event(EV_RECONNECTED, NULL, NULL, 0, 0);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

void fake_virt_events_flush(void)
{
	pthread_mutex_lock(&fake_virtd.lock);
	while (fake_virtd.current && (fake_virtd.nqueue > 0 || fake_virtd.delivering)) {
		pthread_cond_wait(&fake_virtd.cond, &fake_virtd.lock);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
}

/* ---- hsm_virt: connection ------------------------------------------------------------ */

int hsm_virt_new(const struct hsm_virt_config *cfg, const struct hsm_virt_callbacks *cb,
		 struct hsm_virt **ret, struct pk_error *err)
{
	struct hsm_virt *v;
	int r;

	(void)cfg;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_NEW, err);
	if (r == 0 && fake_virtd.current) {
		r = pk_error_set(err, PK_E_INTERNAL, EBUSY, "fake_virt: a struct hsm_virt exists");
	}
	if (r < 0) {
		pthread_mutex_unlock(&fake_virtd.lock);
		return r;
	}
	v = pk_xcalloc(1, sizeof(*v));
	if (cb) {
		v->cb = *cb;
	}
	fake_virtd.current = v;
	fake_virtd.generation = 1;
	fake_virtd.nqueue = 0;
	pthread_mutex_unlock(&fake_virtd.lock);
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
	pthread_mutex_lock(&fake_virtd.lock);
	v->stop = true;
	pthread_cond_broadcast(&fake_virtd.cond);
	pthread_mutex_unlock(&fake_virtd.lock);
	pthread_join(v->thread, NULL);
	pthread_mutex_lock(&fake_virtd.lock);
	if (fake_virtd.current == v) {
		fake_virtd.current = NULL;
	}
	pthread_cond_broadcast(&fake_virtd.cond);
	pthread_mutex_unlock(&fake_virtd.lock);
	free(v);
}

bool hsm_virt_connected(struct hsm_virt *v)
{
	bool c;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	c = fake_virtd.connected;
	pthread_mutex_unlock(&fake_virtd.lock);
	return c;
}

unsigned hsm_virt_generation(struct hsm_virt *v)
{
	unsigned g;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	g = fake_virtd.generation;
	pthread_mutex_unlock(&fake_virtd.lock);
	return g;
}
