/*
 * The test hsmd of the hsm/ unit tests: the contract is tests/lib/hsm_fixture.h.
 */
#include "tests/lib/hsm_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/activation.h"
#include "common/lvm.h"
#include "common/meta.h"
#include "common/proc.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_virt.h"

static void fx_touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	close(fd);
}

int fx_setup(void **state)
{
	struct fx *fx = pk_xcalloc(1, sizeof(*fx));
	struct hsm_settings s = { 0 };
	struct pk_error err = { PK_OK, "" };
	struct pk_meta_tags tags;
	struct pk_domain_meta dm = { 0 };
	const char *pvs[] = { FX_PV, NULL };
	char path[256];
	int r;

	fake_lvm_reset();
	fake_virt_reset();
	snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/pk-test-hsm-XXXXXX");
	assert_non_null(mkdtemp(fx->tmp));
	snprintf(fx->run, sizeof(fx->run), "%s/run", fx->tmp);
	snprintf(fx->lvmap, sizeof(fx->lvmap), "%s/lv", fx->tmp);
	assert_int_equal(mkdir(fx->run, 0755), 0);
	assert_int_equal(mkdir(fx->lvmap, 0755), 0);
	snprintf(path, sizeof(path), "%s/.control", fx->lvmap);
	fx_touch(path);
	snprintf(fx->boot, sizeof(fx->boot), "%s/boot", fx->tmp);
	snprintf(fx->logs, sizeof(fx->logs), "%s/log", fx->tmp);
	assert_int_equal(mkdir(fx->boot, 0755), 0);
	snprintf(path, sizeof(path), "%s/vmlinuz", fx->boot);
	fx_touch(path);

	s.host_id = 2;
	s.run_dir = fx->run;
	s.state_dir = fx->tmp;
	s.boot_dir = fx->boot;
	s.log_dir = fx->logs;
	s.activation = "lab";
	s.lvmap_dir = fx->lvmap;
	s.lvm_devices = FX_PV;
	s.domain_type = "qemu";
	s.qemu_user = "";
	s.lock_timeout_ms = 200;
	r = hsm_init(&fx->hsm, &s, &err);
	assert_int_equal(r, 0);
	r = hsm_start(&fx->hsm, &err);
	assert_int_equal(r, 0);

	pk_uuid_generate(fx->domain);
	snprintf(dm.domain, sizeof(dm.domain), "%s", fx->domain);
	assert_int_equal(pk_meta_domain_encode(&dm, &tags, &err), 0);
	r = pk_lvm_vg_create(fx->hsm.lvm, fx->domain, pvs, 0, pk_meta_tags_strv(&tags), &err);
	assert_int_equal(r, 0);
	snprintf(path, sizeof(path), "%s/%s", fx->lvmap, fx->domain);
	assert_int_equal(mkdir(path, 0755), 0);
	*state = fx;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *fx = *state;
	const char *argv[] = { "rm", "-rf", fx->tmp, NULL };

	hsm_release(&fx->hsm);
	assert_int_equal(pk_proc_check(argv, 10000, PK_OK, NULL, NULL), 0);
	free(fx);
	return 0;
}

const char *fx_link(struct fx *fx, const char *image, const char *volume, char *buf,
		    size_t size)
{
	assert_int_equal(hsm_image_link_path(&fx->hsm, fx->domain, image, volume, buf, size, NULL),
			 0);
	return buf;
}

/*
 * Creates a volume of image (parent NULL: a base) as the SPM would: an LV
 * with its tags, the mapper's file, the qcow2 backing seen by libvirt.
 * Writes its id into id.
 */
void fx_volume_full(struct fx *fx, const char *image, const char *parent,
		    enum pk_volume_format format, enum pk_volume_role role,
		    enum pk_volume_legality legality, uint64_t generation, char *id)
{
	struct pk_volume_meta m = { 0 };
	struct pk_meta_tags tags;
	struct pk_error err = { PK_OK, "" };
	char path[256], link[512], plink[512];

	pk_uuid_generate(id);
	snprintf(m.image, sizeof(m.image), "%s", image);
	snprintf(m.parent, sizeof(m.parent), "%s", parent ? parent : PK_META_NO_PARENT);
	m.format = format;
	m.role = role;
	m.legality = legality;
	m.capacity = 64 * FX_MIB;
	m.generation = generation;
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), 0);
	assert_int_equal(pk_lvm_lv_create(fx->hsm.lvm, fx->domain, id, 64 * FX_MIB,
					  pk_meta_tags_strv(&tags), &err),
			 0);
	snprintf(path, sizeof(path), "%s/%s/%s", fx->lvmap, fx->domain, id);
	fx_touch(path);
	fake_virt_image_add(fx_link(fx, image, id, link, sizeof(link)),
			    parent ? fx_link(fx, image, parent, plink, sizeof(plink)) : NULL,
			    format == PK_VOLUME_COW ? HSM_DISK_FORMAT_QCOW2 : HSM_DISK_FORMAT_RAW);
}

void fx_volume(struct fx *fx, const char *image, const char *parent, char *id)
{
	fx_volume_full(fx, image, parent, parent ? PK_VOLUME_COW : PK_VOLUME_RAW, PK_VOLUME_LEAF,
		       PK_VOLUME_LEGAL, 1, id);
}

/* Changes a volume's role/legality in its tags (as UpdateVolumeMeta would). */
void fx_volume_update(struct fx *fx, const char *id, enum pk_volume_role role,
		      enum pk_volume_legality legality)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_volume_meta m;
	struct pk_meta_tags add, del;
	struct pk_error err = { PK_OK, "" };

	assert_int_equal(pk_lvm_lv_report(fx->hsm.lvm, fx->domain, id, &lvs, &err), 0);
	assert_int_equal(pk_meta_volume_decode(id, lvs.lvs[0].tags, &m, &err), 0);
	m.role = role ? role : m.role;
	m.legality = legality ? legality : m.legality;
	assert_int_equal(pk_meta_volume_diff(id, lvs.lvs[0].tags, &m, &add, &del, NULL, &err), 0);
	assert_int_equal(pk_lvm_lv_tags_change(fx->hsm.lvm, fx->domain, id,
					       pk_meta_tags_strv(&add), pk_meta_tags_strv(&del),
					       &err),
			 0);
	pk_lvm_lv_list_release(&lvs);
}

/* An image of base (RAW) <- leaf (COW); ids written to the buffers. */
void fx_image(struct fx *fx, char *image, char *base, char *leaf)
{
	pk_uuid_generate(image);
	fx_volume(fx, image, NULL, base);
	fx_volume(fx, image, base, leaf);
	fx_volume_update(fx, base, PK_VOLUME_INTERNAL, 0);
}

bool fx_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

char *fx_control(struct fx *fx)
{
	char path[256], *buf = pk_xcalloc(1, 1 << 20);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/.control", fx->lvmap);
	f = fopen(path, "re");
	assert_non_null(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}
