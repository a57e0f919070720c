/* The fake libvirtd's domain verbs of hsm/virt.h: define and start, destroy,
 * list, XML, state, disk source and metadata; see fake_virt.h. */
#include "tests/fakes/fake_virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uuid.h"
#include "common/xalloc.h"
#include "tests/fakes/fake_virt_state.h"

#define CHAIN_MAX 256

static const struct image *find_image(const char *path)
{
	for (size_t i = 0; path && i < fake_virtd.nimages; i++) {
		if (strcmp(fake_virtd.images[i].path, path) == 0) {
			return &fake_virtd.images[i];
		}
	}
	return NULL;
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

/* ---- hsm_virt: domains ----------------------------------------------------------------- */

int hsm_virt_domain_create(struct hsm_virt *v, const char *xml,
			   char ret_uuid[PK_UUID_BUFLEN], struct pk_error *err)
{
	struct hsm_vmxml_domain p;
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_CREATE, err);
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
	if (fake_virtd_find_dom(p.name)) {
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
	fake_virtd_set_running(d);
	fake_virtd.doms = pk_xrealloc(fake_virtd.doms,
				      (fake_virtd.ndoms + 1) * sizeof(*fake_virtd.doms));
	fake_virtd.doms[fake_virtd.ndoms++] = d;
	fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_DEFINED, 0);
	fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
	if (ret_uuid) {
		memcpy(ret_uuid, d->uuid, PK_UUID_BUFLEN);
	}
	fake_virtd_record(FAKE_VIRT_CREATE, d->name, NULL, NULL, NULL, false, 0);
	free(fake_virtd.created_xml);
	fake_virtd.created_xml = pk_xstrdup(xml);
out:
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_domain_start(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_START, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && d->state != HSM_VIRT_STATE_SHUTOFF) {
		r = pk_error_set(err, PK_E_CONFLICT, EALREADY,
				 "cannot start VM '%s': Requested operation is not valid: "
				 "domain is already running", name);
	}
	if (r == 0) {
		fake_virtd_set_running(d);
		fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STARTED, 0);
		fake_virtd_record(FAKE_VIRT_START, name, NULL, NULL, NULL, false, 0);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_domain_destroy(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_DESTROY, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0) {
		if (d->state != HSM_VIRT_STATE_SHUTOFF) {
			fake_virtd_set_shutoff(d);
			fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_STOPPED, 1);
		}
		fake_virtd_queue_event(EV_LIFECYCLE, d->name, NULL, HSM_VIRT_EV_UNDEFINED, 0);
		fake_virtd_record(FAKE_VIRT_DESTROY, name, NULL, NULL, NULL, false, 0);
		for (size_t i = 0; i < fake_virtd.ndoms; i++) {
			if (fake_virtd.doms[i] == d) {
				fake_virtd.doms[i] = fake_virtd.doms[--fake_virtd.ndoms];
				break;
			}
		}
		fake_virtd_domain_free(d);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hsm_virt_domain_list(struct hsm_virt *v, char ***ret_names, size_t *ret_n,
			 struct pk_error *err)
{
	char **names;
	size_t n = 0;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_LIST, err);
	if (r == 0) {
		names = pk_xcalloc(fake_virtd.ndoms + 1, sizeof(*names));
		for (size_t i = 0; i < fake_virtd.ndoms; i++) {
			if (fake_virtd.doms[i]->has_meta) {
				names[n++] = pk_xstrdup(fake_virtd.doms[i]->name);
			}
		}
		qsort(names, n, sizeof(*names), cmp_names);
		*ret_names = names;
		*ret_n = n;
	}
	pthread_mutex_unlock(&fake_virtd.lock);
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
			int bpos = fake_virtd_pos_of_index(k, k->job.base_index);
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

char *fake_virt_created_xml(void)
{
	char *xml;

	pthread_mutex_lock(&fake_virtd.lock);
	xml = fake_virtd.created_xml ? pk_xstrdup(fake_virtd.created_xml) : NULL;
	pthread_mutex_unlock(&fake_virtd.lock);
	return xml;
}

int hsm_virt_domain_xml(struct hsm_virt *v, const char *name, char **ret_xml,
			struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_XML, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0) {
		*ret_xml = domain_xml(d);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_domain_state(struct hsm_virt *v, const char *name,
			  enum hsm_virt_state *ret_state, int *ret_reason,
			  struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_STATE, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0) {
		*ret_state = d->state;
		if (ret_reason) {
			*ret_reason = d->state == HSM_VIRT_STATE_PAUSED && d->disk_error ? 5 /* VIR_DOMAIN_PAUSED_IOERROR */ : 0;
		}
	}
	pthread_mutex_unlock(&fake_virtd.lock);
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
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_DISK_SOURCE_SET, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && d->state != HSM_VIRT_STATE_SHUTOFF) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "VM '%s' runs: its disk source changes only while it is shut off",
				 name);
	}
	if (r == 0) {
		k = fake_virtd_find_disk(d, disk);
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
		fake_virtd_record(FAKE_VIRT_DISK_SOURCE_SET, name, disk, NULL, path, false, 0);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}

int hsm_virt_metadata_get(struct hsm_virt *v, const char *name, char **ret_xml,
			  struct pk_error *err)
{
	struct domain *d = NULL;
	int r;

	(void)v;
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_METADATA_GET, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
	}
	if (r == 0 && !d->has_meta) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no poolkeeper metadata",
				 name);
	}
	if (r == 0) {
		r = hsm_vmxml_metadata_build(d->drives, d->ndrives, ret_xml, err);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
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
	pthread_mutex_lock(&fake_virtd.lock);
	r = fake_virtd_begin(FAKE_VIRT_METADATA_SET, err);
	if (r == 0) {
		r = fake_virtd_get_dom(name, &d, err);
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
		fake_virtd_record(FAKE_VIRT_METADATA_SET, name, NULL, NULL, NULL, false, 0);
	}
	pthread_mutex_unlock(&fake_virtd.lock);
	return r;
}
