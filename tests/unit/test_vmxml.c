/*
 * hsm/vmxml*.c: golden-file tests. Inputs and expected outputs live in
 * tests/unit/data/vmxml/ (run from the repository root, or set
 * PK_TEST_DATA_DIR). The parse-*.xml inputs are libvirt 9.0's own output
 * (virDomainGetXMLDesc of a running domain, during an active commit, of an
 * inactive domain) with paths shortened; parse-block.xml is written by
 * hand to cover block devices, a raw base, a pivoting copy and disks we
 * must skip. Set PK_UPDATE_GOLDEN=1 to rewrite the expected files from the
 * current output (then review the diff).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "hsm/vmxml.h"

#define DOM1 "5b0e8a0c-6f1d-4d2e-8c3b-9a8f7e6d5c4b"
#define IMG1 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define IMG2 "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
#define IMG3 "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f"
#define VOL1 "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
#define VOL2 "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
#define VOL3 "6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b"

static const char *data_dir(void)
{
	const char *d = getenv("PK_TEST_DATA_DIR");

	return d ? d : "tests/unit/data/vmxml";
}

static char *read_file(const char *name)
{
	_cleanup_free_ char *path = pk_xasprintf("%s/%s", data_dir(), name);
	char *buf = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fail_msg("cannot open %s (run from the repository root or set "
			 "PK_TEST_DATA_DIR): %s", path, strerror(errno));
	}
	if (getdelim(&buf, &cap, '\0', f) < 0) {
		buf = pk_xstrdup("");
	}
	fclose(f);
	return buf;
}

static void check_golden(const char *name, const char *actual)
{
	_cleanup_free_ char *expected = NULL;

	if (getenv("PK_UPDATE_GOLDEN")) {
		_cleanup_free_ char *path = pk_xasprintf("%s/%s", data_dir(), name);
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(actual, f);
		fclose(f);
		return;
	}
	expected = read_file(name);
	if (strcmp(expected, actual) != 0) {
		print_error("--- expected %s\n%s--- actual\n%s---\n", name, expected, actual);
		fail_msg("output differs from %s", name);
	}
}

/* A readable dump of a parsed domain, compared with parse-*.txt. */
static char *dump_domain(const struct hsm_vmxml_domain *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	fprintf(f, "domain name=%s uuid=%s type=%s id=%d\n", d->name, d->uuid, d->type, d->id);
	fprintf(f, "metadata %s drives=%zu\n", d->has_metadata ? "yes" : "no", d->ndrives);
	for (size_t i = 0; i < d->ndrives; i++) {
		fprintf(f, "  drive %s domain=%s image=%s volume=%s\n", d->drives[i].target,
			d->drives[i].domain_id, d->drives[i].image_id, d->drives[i].volume_id);
	}
	for (size_t i = 0; i < d->ndisks; i++) {
		const struct hsm_vmxml_disk *k = &d->disks[i];

		fprintf(f, "disk %s bus=%s layers=%zu chain=%s mirror=%s", k->target,
			k->bus[0] ? k->bus : "-", k->nlayers,
			k->chain_complete ? "complete" : "partial", hsm_vmxml_mirror_name(k->mirror));
		if (k->mirror != HSM_VMXML_MIRROR_NONE) {
			fprintf(f, " job=%d dest=[%d] %s %s %s", (int)k->mirror_job,
				k->mirror_dest.index, hsm_disk_format_name(k->mirror_dest.format),
				k->mirror_dest.block ? "block" : "file",
				k->mirror_dest.path ? k->mirror_dest.path : "-");
		}
		fprintf(f, "\n");
		for (size_t l = 0; l < k->nlayers; l++) {
			fprintf(f, "  %zu [%d] %s %s %s\n", l, k->layers[l].index,
				hsm_disk_format_name(k->layers[l].format),
				k->layers[l].block ? "block" : "file", k->layers[l].path);
		}
	}
	fclose(f);
	return out;
}

static void parse_file(const char *name, struct hsm_vmxml_domain *dom)
{
	_cleanup_free_ char *xml = read_file(name);
	struct pk_error err;

	pk_error_clear(&err);
	if (hsm_vmxml_domain_parse(xml, dom, &err) < 0) {
		fail_msg("parse %s: %s", name, err.message);
	}
}

static void check_parse_golden(const char *input, const char *expected)
{
	struct hsm_vmxml_domain dom;
	_cleanup_free_ char *text = NULL;

	parse_file(input, &dom);
	text = dump_domain(&dom);
	check_golden(expected, text);
	hsm_vmxml_domain_release(&dom);
}

static void set_id(struct hsm_drive_id *id, const char *target, const char *dom,
		   const char *img, const char *vol)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->target, sizeof(id->target), "%s", target);
	snprintf(id->domain_id, sizeof(id->domain_id), "%s", dom);
	snprintf(id->image_id, sizeof(id->image_id), "%s", img);
	snprintf(id->volume_id, sizeof(id->volume_id), "%s", vol);
}

/* Two virtio qcow2 disks, TCG, a serial log: what the lab creates. */
static void basic_spec(struct hsm_vm_spec *spec, struct hsm_vm_disk disks[2])
{
	memset(disks, 0, 2 * sizeof(disks[0]));
	set_id(&disks[0].id, "vda", DOM1, IMG1, VOL1);
	disks[0].path = "/run/poolkeeper/storage/" DOM1 "/" IMG1 "/" VOL1;
	disks[0].format = HSM_DISK_FORMAT_QCOW2;
	set_id(&disks[1].id, "vdb", DOM1, IMG2, VOL2);
	disks[1].path = "/run/poolkeeper/storage/" DOM1 "/" IMG2 "/" VOL2;
	disks[1].format = HSM_DISK_FORMAT_QCOW2;
	memset(spec, 0, sizeof(*spec));
	spec->name = "pkt-basic";
	spec->memory_mib = 64;
	spec->vcpus = 1;
	spec->type = HSM_VM_TYPE_QEMU;
	spec->disks = disks;
	spec->ndisks = 2;
	spec->serial_log = "/var/log/poolkeeper/vm/pkt-basic.log";
}

/* ---- building -------------------------------------------------------------- */

static void test_vmxml__build_basic(void **state)
{
	struct hsm_vm_disk disks[2];
	struct hsm_vm_spec spec;
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	(void)state;
	basic_spec(&spec, disks);
	assert_int_equal(hsm_vmxml_domain_build(&spec, &xml, &err), 0);
	check_golden("build-basic.xml", xml);
}

/* KVM, direct kernel boot, every bus, block devices, automatic targets,
 * and characters that must be escaped. */
static void test_vmxml__build_kernel_and_escaping(void **state)
{
	struct hsm_vm_disk disks[4];
	struct hsm_vm_spec spec;
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	(void)state;
	memset(disks, 0, sizeof(disks));
	set_id(&disks[0].id, "", DOM1, IMG1, VOL1);
	disks[0].path = "/srv/odd dir/a&b<c>'q'\"d\".qcow2";
	disks[0].format = HSM_DISK_FORMAT_QCOW2;
	set_id(&disks[1].id, "vda", DOM1, IMG2, VOL2);
	disks[1].path = "/dev/vg-" DOM1 "/" VOL2;
	disks[1].block = true;
	disks[1].format = HSM_DISK_FORMAT_RAW;
	set_id(&disks[2].id, "", DOM1, IMG3, VOL3);
	disks[2].path = "/dev/vg0/sata0";
	disks[2].block = true;
	disks[2].format = HSM_DISK_FORMAT_RAW;
	disks[2].bus = HSM_DISK_BUS_SATA;
	set_id(&disks[3].id, "", DOM1, IMG3, VOL1);
	disks[3].path = "/dev/vg0/scsi0";
	disks[3].block = true;
	disks[3].format = HSM_DISK_FORMAT_QCOW2;
	disks[3].bus = HSM_DISK_BUS_SCSI;
	memset(&spec, 0, sizeof(spec));
	spec.name = "guest_1.test+x";
	spec.uuid = "0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b";
	spec.memory_mib = 2048;
	spec.vcpus = 2;
	spec.type = HSM_VM_TYPE_KVM;
	spec.io = HSM_DISK_IO_THREADS;
	spec.discard = true;
	spec.disks = disks;
	spec.ndisks = 4;
	spec.kernel = "/var/lib/poolkeeper/guest/vmlinuz";
	spec.initrd = "/var/lib/poolkeeper/guest/initrd.img";
	spec.cmdline = "console=ttyS0 quiet pk.msg=\"a<b & c>d\" pk.q='x'";
	assert_int_equal(hsm_vmxml_domain_build(&spec, &xml, &err), 0);
	check_golden("build-kernel.xml", xml);
}

/* What we build parses back to the same identities and sources. */
static void test_vmxml__build_parses_back(void **state)
{
	struct hsm_vm_disk disks[2];
	struct hsm_vm_spec spec;
	struct hsm_vmxml_domain dom;
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	(void)state;
	basic_spec(&spec, disks);
	assert_int_equal(hsm_vmxml_domain_build(&spec, &xml, &err), 0);
	assert_int_equal(hsm_vmxml_domain_parse(xml, &dom, &err), 0);
	assert_string_equal(dom.name, "pkt-basic");
	assert_string_equal(dom.type, "qemu");
	assert_int_equal(dom.id, -1);
	assert_true(dom.has_metadata);
	assert_int_equal(dom.ndrives, 2);
	assert_int_equal(dom.ndisks, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_memory_equal(&dom.drives[i], &disks[i].id, sizeof(disks[i].id));
		assert_string_equal(dom.disks[i].target, disks[i].id.target);
		assert_int_equal(dom.disks[i].nlayers, 1);
		assert_string_equal(dom.disks[i].layers[0].path, disks[i].path);
		assert_int_equal(dom.disks[i].layers[0].format, HSM_DISK_FORMAT_QCOW2);
		assert_int_equal(dom.disks[i].layers[0].index, -1);
		assert_false(dom.disks[i].chain_complete);
	}
	hsm_vmxml_domain_release(&dom);
}

struct bad_spec {
	const char *what;
	void (*mutate)(struct hsm_vm_spec *spec, struct hsm_vm_disk *disks);
	const char *message; /* a substring of the error */
};

static void m_name_empty(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->name = ""; }
static void m_name_slash(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->name = "a/b"; }
static void m_name_dash(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->name = "-x"; }
static void m_mem(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->memory_mib = 0; }
static void m_vcpus(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->vcpus = 1000; }
static void m_type(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->type = 0; }
static void m_uuid(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->uuid = "nope"; }
static void m_rel_path(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[1].path = "rel/x"; }
static void m_null_path(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].path = NULL; }
static void m_ctl_path(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].path = "/a\nb"; }
static void m_utf8_path(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].path = "/caf\xc3\xa9"; }
static void m_format(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].format = HSM_DISK_FORMAT_UNKNOWN; }
static void m_bus(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].bus = 7; }
static void m_dup_target(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; strcpy(d[1].id.target, "vda"); }
static void m_bus_target(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; strcpy(d[1].id.target, "sdb"); }
static void m_bad_target(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; strcpy(d[1].id.target, "vd1"); }
static void m_vol_id(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; strcpy(d[1].id.volume_id, "../../etc"); }
static void m_img_id(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)s; d[0].id.image_id[0] = '\0'; }
static void m_initrd(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->initrd = "/boot/initrd"; }
static void m_cmdline_ctl(struct hsm_vm_spec *s, struct hsm_vm_disk *d)
{
	(void)d;
	s->kernel = "/boot/vmlinuz";
	s->cmdline = "console=ttyS0\x01";
}
static void m_serial_rel(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->serial_log = "x.log"; }
static void m_ndisks(struct hsm_vm_spec *s, struct hsm_vm_disk *d) { (void)d; s->ndisks = HSM_VM_DISKS_MAX + 1; }

static void test_vmxml__build_rejects_bad_specs(void **state)
{
	static const struct bad_spec cases[] = {
		{ "empty name", m_name_empty, "VM name" },
		{ "slash in name", m_name_slash, "VM name 'a/b'" },
		{ "leading dash", m_name_dash, "VM name '-x'" },
		{ "no memory", m_mem, "memory_mib 0" },
		{ "too many vcpus", m_vcpus, "vcpus 1000" },
		{ "no type", m_type, "kvm or qemu" },
		{ "bad uuid", m_uuid, "uuid 'nope'" },
		{ "relative path", m_rel_path, "disks[1].path must be an absolute path" },
		{ "no path", m_null_path, "disks[0].path" },
		{ "newline in path", m_ctl_path, "disks[0].path contains a control" },
		{ "non-ASCII path", m_utf8_path, "non-ASCII" },
		{ "unknown format", m_format, "raw or qcow2" },
		{ "unknown bus", m_bus, "virtio, sata or scsi" },
		{ "duplicate target", m_dup_target, "'vda' is used twice" },
		{ "target of another bus", m_bus_target, "'sdb' is not a virtio target" },
		{ "malformed target", m_bad_target, "'vd1'" },
		{ "volume id not a uuid", m_vol_id, "disks[1].volume_id '../../etc'" },
		{ "missing image id", m_img_id, "disks[0].image_id is required" },
		{ "initrd without kernel", m_initrd, "need a kernel" },
		{ "control char in cmdline", m_cmdline_ctl, "cmdline contains" },
		{ "relative serial log", m_serial_rel, "serial_log" },
		{ "too many disks", m_ndisks, "at most" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hsm_vm_disk disks[2];
		struct hsm_vm_spec spec;
		char *xml = NULL;
		struct pk_error err;

		basic_spec(&spec, disks);
		cases[i].mutate(&spec, disks);
		pk_error_clear(&err);
		if (hsm_vmxml_domain_build(&spec, &xml, &err) == 0) {
			fail_msg("%s: accepted", cases[i].what);
		}
		assert_null(xml);
		if (err.code != PK_E_INVALID_ARGUMENT || !strstr(err.message, cases[i].message)) {
			fail_msg("%s: got %s '%s', expected INVALID_ARGUMENT containing '%s'",
				 cases[i].what, pk_errc_name(err.code), err.message,
				 cases[i].message);
		}
	}
	assert_int_equal(hsm_vmxml_domain_build(NULL, NULL, NULL), -EINVAL);
}

static void test_vmxml__target_names(void **state)
{
	static const struct {
		enum hsm_disk_bus bus;
		size_t index;
		const char *name;
	} cases[] = {
		{ HSM_DISK_BUS_VIRTIO, 0, "vda" },   { HSM_DISK_BUS_VIRTIO, 25, "vdz" },
		{ HSM_DISK_BUS_VIRTIO, 26, "vdaa" }, { HSM_DISK_BUS_VIRTIO, 27, "vdab" },
		{ HSM_DISK_BUS_SATA, 701, "sdzz" },  { HSM_DISK_BUS_SCSI, 702, "sdaaa" },
		{ HSM_DISK_BUS_SCSI, 18277, "sdzzz" },
	};
	char out[HSM_VMXML_TARGET_MAX];
	struct pk_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(hsm_vmxml_target_name(cases[i].bus, cases[i].index, out, &err), 0);
		assert_string_equal(out, cases[i].name);
	}
	assert_int_equal(hsm_vmxml_target_name(HSM_DISK_BUS_VIRTIO, 18278, out, &err), -ERANGE);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_vmxml_target_name(9, 0, out, &err), -EINVAL);
}

static void test_vmxml__vm_names(void **state)
{
	char longname[HSM_VM_NAME_MAX + 2];

	(void)state;
	assert_true(hsm_vm_name_valid("pkt-virt-123"));
	assert_true(hsm_vm_name_valid("A.b_c+d-9"));
	assert_false(hsm_vm_name_valid(NULL));
	assert_false(hsm_vm_name_valid(""));
	assert_false(hsm_vm_name_valid(".hidden"));
	assert_false(hsm_vm_name_valid("-opt"));
	assert_false(hsm_vm_name_valid("a b"));
	assert_false(hsm_vm_name_valid("a'b"));
	memset(longname, 'x', sizeof(longname));
	longname[HSM_VM_NAME_MAX] = '\0';
	assert_true(hsm_vm_name_valid(longname));
	longname[HSM_VM_NAME_MAX] = 'x';
	longname[HSM_VM_NAME_MAX + 1] = '\0';
	assert_false(hsm_vm_name_valid(longname));
}

/* ---- parsing ----------------------------------------------------------------- */

static void test_vmxml__parse_live(void **state)
{
	(void)state;
	check_parse_golden("parse-live.xml", "parse-live.txt");
}

static void test_vmxml__parse_live_mirror(void **state)
{
	(void)state;
	check_parse_golden("parse-live-mirror.xml", "parse-live-mirror.txt");
}

static void test_vmxml__parse_inactive(void **state)
{
	(void)state;
	check_parse_golden("parse-inactive.xml", "parse-inactive.txt");
}

static void test_vmxml__parse_block(void **state)
{
	(void)state;
	check_parse_golden("parse-block.xml", "parse-block.txt");
}

static void test_vmxml__lookups_and_layer_refs(void **state)
{
	struct hsm_vmxml_domain live, inactive;
	const struct hsm_vmxml_disk *vda;
	char ref[32];
	struct pk_error err;

	(void)state;
	parse_file("parse-live.xml", &live);
	parse_file("parse-inactive.xml", &inactive);
	vda = hsm_vmxml_domain_disk(&live, "vda");
	assert_non_null(vda);
	assert_null(hsm_vmxml_domain_disk(&live, "vdc"));
	assert_null(hsm_vmxml_domain_disk(NULL, "vda"));
	assert_non_null(hsm_vmxml_domain_drive(&live, "vdb"));
	assert_null(hsm_vmxml_domain_drive(&live, "sda"));

	assert_int_equal(hsm_vmxml_disk_find_path(vda, "/srv/pk/img/a-s1.qcow2"), 1);
	assert_int_equal(hsm_vmxml_disk_find_path(vda, "/srv/pk/img/nope"), -ENOENT);
	assert_int_equal(hsm_vmxml_disk_layer_ref(vda, 0, ref, sizeof(ref), &err), 0);
	assert_string_equal(ref, "vda[2]");
	assert_int_equal(hsm_vmxml_disk_layer_ref(vda, 2, ref, sizeof(ref), &err), 0);
	assert_string_equal(ref, "vda[6]");
	assert_int_equal(hsm_vmxml_disk_layer_ref(vda, 3, ref, sizeof(ref), &err), -ERANGE);
	assert_int_equal(hsm_vmxml_disk_layer_ref(vda, 0, ref, 4, &err), -ENOBUFS);
	/* An inactive XML has no indexes: a commit cannot be addressed. */
	assert_int_equal(hsm_vmxml_disk_layer_ref(hsm_vmxml_domain_disk(&inactive, "vda"), 0,
						  ref, sizeof(ref), &err), -ENOENT);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "is the VM running?"));
	hsm_vmxml_domain_release(&live);
	hsm_vmxml_domain_release(&inactive);
	hsm_vmxml_domain_release(NULL);
}

static void test_vmxml__parse_rejects_bad_xml(void **state)
{
	static const struct {
		const char *what;
		const char *xml;
		const char *message;
	} cases[] = {
		{ "not XML", "this is not xml", "malformed domain XML" },
		{ "truncated", "<domain><name>x</name>", "malformed domain XML" },
		{ "a DTD", "<!DOCTYPE domain [<!ENTITY e 'x'>]><domain><name>&e;</name></domain>",
		  "DTD" },
		{ "wrong root", "<network><name>x</name></network>", "not <domain>" },
		{ "no name", "<domain type='kvm'/>", "no <name>" },
		{ "bad uuid", "<domain><name>x</name><uuid>ABC</uuid></domain>", "<uuid>" },
		{ "disk without target",
		  "<domain><name>x</name><devices><disk device='disk'><source file='/a'/>"
		  "</disk></devices></domain>",
		  "no (or an overlong) <target" },
		{ "bad index",
		  "<domain><name>x</name><devices><disk><source file='/a' index='-3'/>"
		  "<target dev='vda'/></disk></devices></domain>",
		  "invalid index" },
		{ "metadata volume not a uuid",
		  "<domain><name>x</name><metadata><pk:vm xmlns:pk='" HSM_VMXML_NS "'>"
		  "<pk:drive target='vda' domain='" DOM1 "' image='" IMG1 "' volume='../x'/>"
		  "</pk:vm></metadata></domain>",
		  "lacks a valid domain/image/volume id" },
		{ "metadata drive twice",
		  "<domain><name>x</name><metadata><pk:vm xmlns:pk='" HSM_VMXML_NS "'>"
		  "<pk:drive target='vda' domain='" DOM1 "' image='" IMG1 "' volume='" VOL1 "'/>"
		  "<pk:drive target='vda' domain='" DOM1 "' image='" IMG1 "' volume='" VOL1 "'/>"
		  "</pk:vm></metadata></domain>",
		  "listed twice" },
		{ "metadata target malformed",
		  "<domain><name>x</name><metadata><pk:vm xmlns:pk='" HSM_VMXML_NS "'>"
		  "<pk:drive target='../vda' domain='" DOM1 "' image='" IMG1 "' volume='" VOL1 "'/>"
		  "</pk:vm></metadata></domain>",
		  "no valid target" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hsm_vmxml_domain dom;
		struct pk_error err;

		memset(&dom, 0x5a, sizeof(dom));
		pk_error_clear(&err);
		if (hsm_vmxml_domain_parse(cases[i].xml, &dom, &err) == 0) {
			fail_msg("%s: accepted", cases[i].what);
		}
		if (err.code != PK_E_ILLEGAL || !strstr(err.message, cases[i].message)) {
			fail_msg("%s: got %s '%s', expected ILLEGAL containing '%s'", cases[i].what,
				 pk_errc_name(err.code), err.message, cases[i].message);
		}
	}
}

static void test_vmxml__parse_foreign_domain(void **state)
{
	struct hsm_vmxml_domain dom;
	struct pk_error err;

	(void)state;
	/* No metadata of ours, a disk without source: parsed, not ours. */
	assert_int_equal(hsm_vmxml_domain_parse("<domain type='kvm' id='3'><name>other</name>"
						"<devices><disk type='file' device='disk'>"
						"<target dev='vda' bus='virtio'/></disk></devices>"
						"</domain>",
						&dom, &err),
			 0);
	assert_false(dom.has_metadata);
	assert_int_equal(dom.id, 3);
	assert_int_equal(dom.ndisks, 1);
	assert_int_equal(dom.disks[0].nlayers, 0);
	hsm_vmxml_domain_release(&dom);
	assert_int_equal(hsm_vmxml_domain_parse(NULL, &dom, &err), -EBADMSG);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

/* ---- snapshots -------------------------------------------------------------------- */

static void test_vmxml__snapshot_one_disk(void **state)
{
	struct hsm_vmxml_domain dom;
	struct hsm_vmxml_snapshot_disk disks[] = {
		{ .target = "vdb", .path = "/srv/pk/img/b-s3.qcow2" },
	};
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	(void)state;
	parse_file("parse-live.xml", &dom);
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, disks, 1, &xml, &err), 0);
	check_golden("snapshot-one.xml", xml);
	hsm_vmxml_domain_release(&dom);
}

static void test_vmxml__snapshot_all_disks(void **state)
{
	struct hsm_vmxml_domain dom;
	struct hsm_vmxml_snapshot_disk disks[] = {
		{ .target = "sdb", .path = "/dev/vg0/scratch-snap", .block = true },
		{ .target = "vda", .path = "/run/poolkeeper/storage/x/y/new'&<leaf>", .block = true },
	};
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	(void)state;
	parse_file("parse-block.xml", &dom);
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, disks, 2, &xml, &err), 0);
	check_golden("snapshot-block.xml", xml);
	hsm_vmxml_domain_release(&dom);
}

static void test_vmxml__snapshot_rejects(void **state)
{
	struct hsm_vmxml_domain dom;
	struct hsm_vmxml_snapshot_disk unknown[] = { { .target = "vdc", .path = "/a" } };
	struct hsm_vmxml_snapshot_disk twice[] = { { .target = "vda", .path = "/a" },
						   { .target = "vda", .path = "/b" } };
	struct hsm_vmxml_snapshot_disk relative[] = { { .target = "vda", .path = "a" } };
	char *xml = NULL;
	struct pk_error err;

	(void)state;
	parse_file("parse-live.xml", &dom);
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, unknown, 1, &xml, &err), -ENOENT);
	assert_non_null(strstr(err.message, "no disk 'vdc'"));
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, twice, 2, &xml, &err), -EEXIST);
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, relative, 1, &xml, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_vmxml_snapshot_build(&dom, relative, 0, &xml, &err), -EINVAL);
	assert_null(xml);
	hsm_vmxml_domain_release(&dom);
}

/* ---- metadata --------------------------------------------------------------------- */

static void test_vmxml__metadata_roundtrip(void **state)
{
	struct hsm_drive_id ids[2];
	_cleanup_free_ char *xml = NULL;
	_cleanup_free_ char *in_ns = NULL;
	_cleanup_free_ struct hsm_drive_id *back = NULL;
	_cleanup_free_ struct hsm_drive_id *back2 = NULL;
	size_t n = 0, n2 = 0;
	struct pk_error err;

	(void)state;
	set_id(&ids[0], "vda", DOM1, IMG1, VOL1);
	set_id(&ids[1], "sda", DOM1, IMG2, VOL2);
	assert_int_equal(hsm_vmxml_metadata_build(ids, 2, &xml, &err), 0);
	check_golden("metadata.xml", xml);
	/* As virDomainGetMetadata returns it: no namespace. */
	assert_int_equal(hsm_vmxml_metadata_parse(xml, &back, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(back, ids, sizeof(ids));
	/* As it sits inside a domain: in our namespace. */
	in_ns = pk_xstrdup("<pk:vm xmlns:pk='" HSM_VMXML_NS "'><pk:drive target='vda' domain='" DOM1
			   "' image='" IMG1 "' volume='" VOL1 "'/></pk:vm>");
	assert_int_equal(hsm_vmxml_metadata_parse(in_ns, &back2, &n2, &err), 0);
	assert_int_equal(n2, 1);
	assert_memory_equal(&back2[0], &ids[0], sizeof(ids[0]));
}

/* ---- editing a definition --------------------------------------------------- */

static void test_vmxml__disk_source_set(void **state)
{
	_cleanup_free_ char *xml = read_file("parse-inactive.xml"), *out = NULL, *text = NULL;
	_cleanup_free_ char *again = NULL;
	struct hsm_vmxml_domain dom;
	struct pk_error err;

	(void)state;
	pk_error_clear(&err);
	/* vda onto a raw base: source, format and our metadata's leaf change together. */
	assert_int_equal(hsm_vmxml_disk_source_set(xml, "vda", "/srv/pk/img/a-base.raw",
						   HSM_DISK_FORMAT_RAW, VOL3, &out, &err), 0);
	assert_int_equal(hsm_vmxml_domain_parse(out, &dom, &err), 0);
	text = dump_domain(&dom);
	check_golden("disk-source-set.txt", text);
	hsm_vmxml_domain_release(&dom);
	/* Everything else is as it was (the guest agent channel, addresses, vdb). */
	assert_non_null(strstr(out, "org.qemu.guest_agent.0"));
	assert_non_null(strstr(out, "slot=\"0x03\""));
	assert_non_null(strstr(out, "/srv/pk/img/b-s1.qcow2"));
	assert_null(strstr(out, "a-s1.qcow2"));
	/* Idempotent. */
	assert_int_equal(hsm_vmxml_disk_source_set(out, "vda", "/srv/pk/img/a-base.raw",
						   HSM_DISK_FORMAT_RAW, VOL3, &again, &err), 0);
	assert_string_equal(again, out);
	/* Refusals. */
	assert_int_equal(hsm_vmxml_disk_source_set(xml, "vdc", "/x", HSM_DISK_FORMAT_RAW, VOL3,
						   &again, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(hsm_vmxml_disk_source_set(xml, "vda", "rel/path", HSM_DISK_FORMAT_RAW,
						   VOL3, &again, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_vmxml_disk_source_set(xml, "vda", "/x", HSM_DISK_FORMAT_RAW,
						   "not-a-uuid", &again, &err), -EINVAL);
	assert_int_equal(hsm_vmxml_disk_source_set("<domain", "vda", "/x", HSM_DISK_FORMAT_RAW,
						   VOL3, &again, &err), -EBADMSG);
	assert_int_equal(err.code, PK_E_ILLEGAL);
}

static void test_vmxml__metadata_rejects(void **state)
{
	struct hsm_drive_id ids[2];
	struct hsm_drive_id *back = NULL;
	char *xml = NULL;
	size_t n = 0;
	struct pk_error err;

	(void)state;
	set_id(&ids[0], "vda", DOM1, IMG1, VOL1);
	set_id(&ids[1], "vda", DOM1, IMG2, VOL2);
	assert_int_equal(hsm_vmxml_metadata_build(ids, 2, &xml, &err), -EEXIST);
	set_id(&ids[1], "vdb", DOM1, IMG2, "x");
	assert_int_equal(hsm_vmxml_metadata_build(ids, 2, &xml, &err), -EINVAL);
	assert_non_null(strstr(err.message, "volume_id"));
	set_id(&ids[1], "nope", DOM1, IMG2, VOL2);
	assert_int_equal(hsm_vmxml_metadata_build(ids, 2, &xml, &err), -EINVAL);
	assert_null(xml);
	assert_int_equal(hsm_vmxml_metadata_parse("<other/>", &back, &n, &err), -EBADMSG);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_int_equal(hsm_vmxml_metadata_parse("<vm xmlns='https://example.org/'/>", &back, &n,
						  &err),
			 -EBADMSG);
	assert_int_equal(hsm_vmxml_metadata_parse("<vm>", &back, &n, &err), -EBADMSG);
	assert_null(back);
	/* Empty is fine: a VM without disks is still ours. */
	assert_int_equal(hsm_vmxml_metadata_parse("<vm/>", &back, &n, &err), 0);
	assert_int_equal(n, 0);
	free(back);
}

static void test_vmxml__names(void **state)
{
	(void)state;
	assert_string_equal(hsm_disk_format_name(HSM_DISK_FORMAT_QCOW2), "qcow2");
	assert_string_equal(hsm_disk_format_name(HSM_DISK_FORMAT_RAW), "raw");
	assert_string_equal(hsm_disk_format_name(HSM_DISK_FORMAT_UNKNOWN), "unknown");
	assert_string_equal(hsm_disk_bus_name(HSM_DISK_BUS_SCSI), "scsi");
	assert_string_equal(hsm_disk_bus_name(9), "unknown");
	assert_string_equal(hsm_vmxml_mirror_name(HSM_VMXML_MIRROR_READY), "ready");
	assert_string_equal(hsm_vmxml_mirror_name(HSM_VMXML_MIRROR_OTHER), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vmxml__build_basic),
		cmocka_unit_test(test_vmxml__build_kernel_and_escaping),
		cmocka_unit_test(test_vmxml__build_parses_back),
		cmocka_unit_test(test_vmxml__build_rejects_bad_specs),
		cmocka_unit_test(test_vmxml__target_names),
		cmocka_unit_test(test_vmxml__vm_names),
		cmocka_unit_test(test_vmxml__parse_live),
		cmocka_unit_test(test_vmxml__parse_live_mirror),
		cmocka_unit_test(test_vmxml__parse_inactive),
		cmocka_unit_test(test_vmxml__parse_block),
		cmocka_unit_test(test_vmxml__lookups_and_layer_refs),
		cmocka_unit_test(test_vmxml__parse_rejects_bad_xml),
		cmocka_unit_test(test_vmxml__parse_foreign_domain),
		cmocka_unit_test(test_vmxml__snapshot_one_disk),
		cmocka_unit_test(test_vmxml__snapshot_all_disks),
		cmocka_unit_test(test_vmxml__snapshot_rejects),
		cmocka_unit_test(test_vmxml__metadata_roundtrip),
		cmocka_unit_test(test_vmxml__metadata_rejects),
		cmocka_unit_test(test_vmxml__disk_source_set),
		cmocka_unit_test(test_vmxml__names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
