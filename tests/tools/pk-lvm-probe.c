/*
 * pk-lvm-probe — drives common/lvm.c, common/meta.c and
 * common/activation*.c against real LVM, for tests/integration/test_lvm.sh
 * and for measuring.
 *
 *   pk-lvm-probe -d DEV[,DEV...] [-a dm|lab] [-m LVMAP_DIR] [-c CONF_DIR]
 *                [-t LOCK_TIMEOUT_MS] COMMAND ARGS...
 *
 *   vg-create VG PV[,PV...] EXTENT_SIZE [TAG...]   (EXTENT_SIZE 0: default)
 *   vg-report VG            "vg NAME size= free= extent_size= extents=
 *                            free_extents= tags=" and "pv PATH size= free=
 *                            pe_start="
 *   vg-remove VG [force]
 *   vg-tags VG +ADD|-DEL...
 *   lv-create VG LV SIZE [TAG...]
 *   lv-remove VG LV
 *   lv-extend VG LV SIZE
 *   lv-tags VG LV +ADD|-DEL...             one lvchange
 *   lv-report VG [LV]        "lv NAME size= linear= segments= tags=" and
 *                            "seg LV START_EXTENT EXTENTS PV PV_EXTENT"
 *   table VG LV              the lab table: "START COUNT PV PV_OFFSET" (sectors)
 *   activate|refresh|deactivate|path VG LV     (needs -a)
 *   vol-create VG LV SIZE IMAGE PARENT RAW|COW [DESCRIPTION]
 *   vol-show VG LV           the decoded metadata as key=value lines
 *   vol-set VG LV KEY=VALUE...   keys: parent role legal cap desc; one
 *                            lvchange with the generation bumped
 *   domain-create VG PV[,PV...] DOMAIN_UUID [DESCRIPTION]
 *   domain-show VG
 *   bench VG NLVS ITERATIONS  in-process lvcreate+lvremove cycle after adding
 *                            NLVS LVs (lvs_in_vg counts the cycled one)
 * Failures print "ERROR CODE: message" on stderr and exit 1 (2: usage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/activation.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/lvm.h"
#include "common/meta.h"
#include "common/uuid.h"

#define MAX_ITEMS 64

struct probe {
	struct pk_lvm *lvm;
	struct pk_activation *act;
	struct pk_error err;
};

/* Splits a comma-separated list in place into a NULL-terminated array. */
static void split_list(char *s, const char **out, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(s, ","); tok && n + 1 < max; tok = strtok(NULL, ",")) {
		out[n++] = tok;
	}
	out[n] = NULL;
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || !*s) {
		fprintf(stderr, "not a number: '%s'\n", s);
		exit(2);
	}
	return v;
}

static void print_tags(char *const *tags)
{
	printf(" tags=");
	for (size_t i = 0; tags && tags[i]; i++) {
		printf("%s%s", i ? "," : "", tags[i]);
	}
	printf("\n");
}

static int cmd_vg_report(struct probe *p, const char *vg)
{
	struct pk_lvm_vg r;

	if (pk_lvm_vg_report(p->lvm, vg, &r, &p->err) < 0) {
		return -1;
	}
	printf("vg %s size=%" PRIu64 " free=%" PRIu64 " extent_size=%" PRIu64
	       " extents=%" PRIu64 " free_extents=%" PRIu64,
	       r.name, r.size, r.free, r.extent_size, r.extent_count, r.free_count);
	print_tags(r.tags);
	for (size_t i = 0; i < r.npvs; i++) {
		printf("pv %s size=%" PRIu64 " free=%" PRIu64 " pe_start=%" PRIu64 "\n",
		       r.pvs[i].name, r.pvs[i].size, r.pvs[i].free, r.pvs[i].pe_start);
	}
	pk_lvm_vg_release(&r);
	return 0;
}

static int cmd_lv_report(struct probe *p, const char *vg, const char *lv)
{
	struct pk_lvm_lv_list list;

	if (pk_lvm_lv_report(p->lvm, vg, lv, &list, &p->err) < 0) {
		return -1;
	}
	for (size_t i = 0; i < list.count; i++) {
		const struct pk_lvm_lv *l = &list.lvs[i];

		printf("lv %s size=%" PRIu64 " linear=%d segments=%zu", l->name, l->size,
		       l->linear, l->nsegments);
		print_tags(l->tags);
		for (size_t s = 0; s < l->nsegments; s++) {
			printf("seg %s %" PRIu64 " %" PRIu64 " %s %" PRIu64 "\n", l->name,
			       l->segments[s].start_extent, l->segments[s].extent_count,
			       l->segments[s].pv, l->segments[s].pv_start_extent);
		}
	}
	pk_lvm_lv_list_release(&list);
	return 0;
}

/* "+TAG" adds, "-TAG" deletes. */
static int cmd_tags(struct probe *p, const char *vg, const char *lv, int argc, char **argv)
{
	const char *add[MAX_ITEMS], *del[MAX_ITEMS];
	size_t nadd = 0, ndel = 0;

	for (int i = 0; i < argc && nadd + 1 < MAX_ITEMS && ndel + 1 < MAX_ITEMS; i++) {
		if (argv[i][0] == '+') {
			add[nadd++] = argv[i] + 1;
		} else if (argv[i][0] == '-') {
			del[ndel++] = argv[i] + 1;
		} else {
			fprintf(stderr, "tag change '%s' is not +TAG or -TAG\n", argv[i]);
			exit(2);
		}
	}
	add[nadd] = NULL;
	del[ndel] = NULL;
	if (lv) {
		return pk_lvm_lv_tags_change(p->lvm, vg, lv, add, del, &p->err);
	}
	return pk_lvm_vg_tags_change(p->lvm, vg, add, del, &p->err);
}

static int cmd_table(struct probe *p, const char *vg, const char *lv)
{
	struct pk_lvm_lv_list list = { 0 };
	struct pk_lvmap_table t = { 0 };
	struct pk_lvm_vg vgr = { 0 };
	int r;

	if ((r = pk_lvm_lv_report(p->lvm, vg, lv, &list, &p->err)) == 0 &&
	    (r = pk_lvm_vg_report(p->lvm, vg, &vgr, &p->err)) == 0 &&
	    (r = pk_activation_lab_table(&vgr, &list.lvs[0], list.extent_size, &t, &p->err)) ==
		    0) {
		for (size_t i = 0; i < t.nsegments; i++) {
			printf("%" PRIu64 " %" PRIu64 " %s %" PRIu64 "\n", t.segments[i].start,
			       t.segments[i].count, t.segments[i].pv, t.segments[i].pv_offset);
		}
	}
	pk_lvmap_table_release(&t);
	pk_lvm_vg_release(&vgr);
	pk_lvm_lv_list_release(&list);
	return r;
}

static int cmd_activation(struct probe *p, const char *cmd, const char *vg, const char *lv)
{
	char path[512];
	int r;

	if (!p->act) {
		fprintf(stderr, "%s needs -a dm|lab\n", cmd);
		exit(2);
	}
	if (strcmp(cmd, "activate") == 0) {
		return pk_activation_activate(p->act, vg, lv, &p->err);
	}
	if (strcmp(cmd, "refresh") == 0) {
		return pk_activation_refresh(p->act, vg, lv, &p->err);
	}
	if (strcmp(cmd, "deactivate") == 0) {
		return pk_activation_deactivate(p->act, vg, lv, &p->err);
	}
	r = pk_activation_path(p->act, vg, lv, path, sizeof(path), &p->err);
	if (r == 0) {
		printf("%s\n", path);
	}
	return r;
}

static int cmd_vol_create(struct probe *p, int argc, char **argv)
{
	struct pk_volume_meta m = { 0 };
	struct pk_meta_tags tags;

	if (argc < 6) {
		exit(2);
	}
	snprintf(m.image, sizeof(m.image), "%s", argv[3]);
	snprintf(m.parent, sizeof(m.parent), "%s", argv[4]);
	if (pk_volume_format_parse(argv[5], &m.format) < 0) {
		fprintf(stderr, "format '%s' is not RAW or COW\n", argv[5]);
		exit(2);
	}
	m.role = PK_VOLUME_LEAF;
	m.legality = PK_VOLUME_LEGAL;
	m.capacity = num(argv[2]);
	m.ctime = (uint64_t)time(NULL);
	if (argc > 6) {
		snprintf(m.description, sizeof(m.description), "%s", argv[6]);
	}
	if (pk_meta_volume_check(argv[1], &m, &p->err) < 0 ||
	    pk_meta_volume_encode(&m, &tags, &p->err) < 0) {
		return -1;
	}
	return pk_lvm_lv_create(p->lvm, argv[0], argv[1], m.capacity, pk_meta_tags_strv(&tags),
				&p->err);
}

static void print_volume(const char *lv, const struct pk_volume_meta *m)
{
	printf("volume=%s\nimage=%s\nparent=%s\nformat=%s\nrole=%s\nlegality=%s\n"
	       "capacity=%" PRIu64 "\ngeneration=%" PRIu64 "\nctime=%" PRIu64
	       "\ndescription=%s\n",
	       lv, m->image, m->parent, pk_volume_format_name(m->format),
	       pk_volume_role_name(m->role), pk_volume_legality_name(m->legality), m->capacity,
	       m->generation, m->ctime, m->description);
}

/* Reports one LV and decodes its metadata; *ret_list keeps the tags. */
static int volume_read(struct probe *p, const char *vg, const char *lv,
		       struct pk_lvm_lv_list *ret_list, struct pk_volume_meta *ret)
{
	if (pk_lvm_lv_report(p->lvm, vg, lv, ret_list, &p->err) < 0) {
		return -1;
	}
	return pk_meta_volume_decode(lv, ret_list->lvs[0].tags, ret, &p->err);
}

static int vol_set_one(struct pk_volume_meta *m, const char *kv)
{
	const char *v = strchr(kv, '=');

	if (!v) {
		return -1;
	}
	v++;
	if (strncmp(kv, "parent=", 7) == 0) {
		snprintf(m->parent, sizeof(m->parent), "%s", v);
	} else if (strncmp(kv, "role=", 5) == 0) {
		return pk_volume_role_parse(v, &m->role);
	} else if (strncmp(kv, "legal=", 6) == 0) {
		return pk_volume_legality_parse(v, &m->legality);
	} else if (strncmp(kv, "cap=", 4) == 0) {
		m->capacity = num(v);
	} else if (strncmp(kv, "desc=", 5) == 0) {
		snprintf(m->description, sizeof(m->description), "%s", v);
	} else {
		return -1;
	}
	return 0;
}

static int cmd_vol(struct probe *p, const char *cmd, int argc, char **argv)
{
	struct pk_lvm_lv_list list = { 0 };
	struct pk_meta_tags add, del;
	struct pk_volume_meta m;
	uint64_t gen;
	int r;

	r = volume_read(p, argv[0], argv[1], &list, &m);
	if (r == 0 && strcmp(cmd, "vol-show") == 0) {
		print_volume(argv[1], &m);
	} else if (r == 0) {
		for (int i = 2; i < argc; i++) {
			if (vol_set_one(&m, argv[i]) < 0) {
				fprintf(stderr, "bad vol-set argument '%s'\n", argv[i]);
				exit(2);
			}
		}
		r = pk_meta_volume_diff(argv[1], list.lvs[0].tags, &m, &add, &del, &gen, &p->err);
		if (r == 0) {
			r = pk_lvm_lv_tags_change(p->lvm, argv[0], argv[1], pk_meta_tags_strv(&add),
						  pk_meta_tags_strv(&del), &p->err);
		}
		if (r == 0) {
			printf("generation=%" PRIu64 " added=%zu deleted=%zu\n", gen, add.count,
			       del.count);
		}
	}
	pk_lvm_lv_list_release(&list);
	return r;
}

static int cmd_domain(struct probe *p, const char *cmd, int argc, char **argv)
{
	struct pk_domain_meta d = { 0 };
	struct pk_meta_tags tags;
	struct pk_lvm_vg vg;
	const char *pvs[MAX_ITEMS];
	int r;

	if (strcmp(cmd, "domain-show") == 0) {
		if (pk_lvm_vg_report(p->lvm, argv[0], &vg, &p->err) < 0) {
			return -1;
		}
		r = pk_meta_domain_decode(argv[0], vg.tags, &d, &p->err);
		if (r == 0) {
			printf("domain=%s\nversion=%u\ndescription=%s\n", d.domain, d.version,
			       d.description);
		}
		pk_lvm_vg_release(&vg);
		return r;
	}
	if (argc < 3) {
		exit(2);
	}
	snprintf(d.domain, sizeof(d.domain), "%s", argv[2]);
	if (argc > 3) {
		snprintf(d.description, sizeof(d.description), "%s", argv[3]);
	}
	if (pk_meta_domain_encode(&d, &tags, &p->err) < 0) {
		return -1;
	}
	split_list(argv[1], pvs, MAX_ITEMS);
	return pk_lvm_vg_create(p->lvm, argv[0], pvs, 0, pk_meta_tags_strv(&tags), &p->err);
}

static int cmd_bench(struct probe *p, const char *vg, unsigned nlvs, unsigned iters)
{
	const char *tags[] = { "PK_BENCH=1", NULL };
	double create_ms = 0, remove_ms = 0;
	uint64_t t;
	char name[64];
	int r = 0;

	for (unsigned i = 0; i < nlvs && r == 0; i++) {
		snprintf(name, sizeof(name), "bench%u", i);
		r = pk_lvm_lv_create(p->lvm, vg, name, 1 << 20, tags, &p->err);
	}
	for (unsigned i = 0; i < iters && r == 0; i++) {
		t = pk_clock_monotonic_us();
		r = pk_lvm_lv_create(p->lvm, vg, "benchcycle", 1 << 20, tags, &p->err);
		create_ms += (double)(pk_clock_monotonic_us() - t) / 1e3;
		if (r == 0) {
			t = pk_clock_monotonic_us();
			r = pk_lvm_lv_remove(p->lvm, vg, "benchcycle", &p->err);
			remove_ms += (double)(pk_clock_monotonic_us() - t) / 1e3;
		}
	}
	if (r == 0) {
		struct pk_lvm_lv_list list;

		r = pk_lvm_lv_report(p->lvm, vg, NULL, &list, &p->err);
		if (r == 0) {
			printf("lvs_in_vg=%zu iterations=%u lvcreate_ms=%.2f lvremove_ms=%.2f "
			       "cycle_ms=%.2f\n",
			       list.count + 1, iters, create_ms / iters, remove_ms / iters,
			       (create_ms + remove_ms) / iters);
			pk_lvm_lv_list_release(&list);
		}
	}
	for (unsigned i = 0; i < nlvs; i++) {
		struct pk_error ignored;

		snprintf(name, sizeof(name), "bench%u", i);
		pk_lvm_lv_remove(p->lvm, vg, name, &ignored);
	}
	return r;
}

static int run(struct probe *p, const char *cmd, int argc, char **argv)
{
	const char *list[MAX_ITEMS];

#define NEED(n)                                                         \
	do {                                                            \
		if (argc < (n)) {                                       \
			fprintf(stderr, "%s needs %d arguments\n", cmd, n); \
			exit(2);                                        \
		}                                                       \
	} while (0)

	if (strcmp(cmd, "vg-create") == 0) {
		NEED(3);
		split_list(argv[1], list, MAX_ITEMS);
		return pk_lvm_vg_create(p->lvm, argv[0], list, num(argv[2]),
					(const char *const *)argv + 3, &p->err);
	}
	if (strcmp(cmd, "vg-report") == 0) {
		NEED(1);
		return cmd_vg_report(p, argv[0]);
	}
	if (strcmp(cmd, "vg-remove") == 0) {
		NEED(1);
		return pk_lvm_vg_remove(p->lvm, argv[0], argc > 1 && strcmp(argv[1], "force") == 0,
					&p->err);
	}
	if (strcmp(cmd, "vg-tags") == 0) {
		NEED(2);
		return cmd_tags(p, argv[0], NULL, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "lv-create") == 0) {
		NEED(3);
		return pk_lvm_lv_create(p->lvm, argv[0], argv[1], num(argv[2]),
					(const char *const *)argv + 3, &p->err);
	}
	if (strcmp(cmd, "lv-remove") == 0) {
		NEED(2);
		return pk_lvm_lv_remove(p->lvm, argv[0], argv[1], &p->err);
	}
	if (strcmp(cmd, "lv-extend") == 0) {
		NEED(3);
		return pk_lvm_lv_extend(p->lvm, argv[0], argv[1], num(argv[2]), &p->err);
	}
	if (strcmp(cmd, "lv-tags") == 0) {
		NEED(3);
		return cmd_tags(p, argv[0], argv[1], argc - 2, argv + 2);
	}
	if (strcmp(cmd, "lv-report") == 0) {
		NEED(1);
		return cmd_lv_report(p, argv[0], argc > 1 ? argv[1] : NULL);
	}
	if (strcmp(cmd, "table") == 0) {
		NEED(2);
		return cmd_table(p, argv[0], argv[1]);
	}
	if (strcmp(cmd, "activate") == 0 || strcmp(cmd, "refresh") == 0 ||
	    strcmp(cmd, "deactivate") == 0 || strcmp(cmd, "path") == 0) {
		NEED(2);
		return cmd_activation(p, cmd, argv[0], argv[1]);
	}
	if (strcmp(cmd, "vol-create") == 0) {
		NEED(6);
		return cmd_vol_create(p, argc, argv);
	}
	if (strcmp(cmd, "vol-show") == 0 || strcmp(cmd, "vol-set") == 0) {
		NEED(2);
		return cmd_vol(p, cmd, argc, argv);
	}
	if (strcmp(cmd, "domain-create") == 0 || strcmp(cmd, "domain-show") == 0) {
		NEED(1);
		return cmd_domain(p, cmd, argc, argv);
	}
	if (strcmp(cmd, "bench") == 0) {
		NEED(3);
		return cmd_bench(p, argv[0], (unsigned)num(argv[1]), (unsigned)num(argv[2]));
	}
#undef NEED
	fprintf(stderr, "unknown command '%s'\n", cmd);
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: pk-lvm-probe -d DEV[,DEV...] [-a dm|lab] [-m LVMAP_DIR] "
			"[-c CONF_DIR] [-t LOCK_TIMEOUT_MS] COMMAND ARGS...\n"
			"(commands: see the comment at the top of tests/tools/pk-lvm-probe.c)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct pk_lvm_config cfg = { 0 };
	struct pk_activation_config acfg = { 0 };
	const char *devices[MAX_ITEMS];
	const char *activation = NULL;
	struct probe p = { 0 };
	int c, r;

	devices[0] = NULL;
	while ((c = getopt(argc, argv, "+d:a:m:c:t:")) != -1) {
		switch (c) {
		case 'd':
			split_list(optarg, devices, MAX_ITEMS);
			break;
		case 'a':
			activation = optarg;
			break;
		case 'm':
			acfg.lvmap_dir = optarg;
			break;
		case 'c':
			cfg.conf_dir = optarg;
			break;
		case 't':
			cfg.lock_timeout_ms = (unsigned)num(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc) {
		usage();
	}
	cfg.devices = devices;
	if (activation && pk_activation_kind_parse(activation, &acfg.kind, &p.err) < 0) {
		fprintf(stderr, "ERROR %s: %s\n", pk_errc_name(p.err.code), p.err.message);
		return 2;
	}
	cfg.activation = activation && acfg.kind == PK_ACTIVATION_DM;
	r = pk_lvm_new(&cfg, &p.lvm, &p.err);
	if (r == 0 && activation) {
		r = pk_activation_new(&acfg, p.lvm, &p.act, &p.err);
	}
	if (r == 0) {
		r = run(&p, argv[optind], argc - optind - 1, argv + optind + 1);
	}
	if (r < 0) {
		fprintf(stderr, "ERROR %s: %s\n", pk_errc_name(p.err.code), p.err.message);
	}
	pk_activation_free(p.act);
	pk_lvm_free(p.lvm);
	return r < 0 ? 1 : 0;
}
