/*
 * A test hsmd for the unit tests of hsm/ (test_hsm_*.c, test_merge.c,
 * test_ctl_flow.c): a struct hsm over the in-memory LVM
 * (tests/fakes/fake_lvm.c) and libvirtd (tests/fakes/fake_virt.c), with the
 * lab activation backend writing its commands into a plain file
 * <tmp>/lv/.control. Creating a volume also creates the file the mapper
 * would serve (<tmp>/lv/<vg>/<lv>) and declares its qcow2 backing to the
 * fake libvirt, so prepared volumes are reachable and VMs see real chains.
 *
 * A test that uses it names `pk-test-fakes: fake_lvm fake_virt` and links
 * cmocka: the helpers fail the running test (cmocka asserts) instead of
 * returning errors. State is per test: fx_setup makes a fresh temporary
 * directory, LVM and libvirt; fx_teardown removes them.
 */
#ifndef TESTS_LIB_HSM_FIXTURE_H
#define TESTS_LIB_HSM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/meta.h"
#include "common/uuid.h"
#include "hsm/hsm.h"

#define FX_PV "/dev/pk-test-hsm-pv0"
#define FX_MIB (1024ull * 1024)

struct fx {
	char tmp[128];
	char run[192];
	char lvmap[192];
	char boot[192]; /* boot_dir, holding an empty regular file "vmlinuz" */
	char logs[192]; /* log_dir */
	char domain[PK_UUID_BUFLEN];
	struct hsm hsm;
};

/* cmocka setup/teardown: *state becomes (and then frees) a struct fx, hsmd started. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* The link path of a volume, in buf; returns buf. */
const char *fx_link(struct fx *fx, const char *image, const char *volume, char *buf,
		    size_t size);

/*
 * Creates a volume of image (parent NULL: a base) as the SPM would: an LV
 * with its tags, the mapper's file, the qcow2 backing seen by libvirt.
 * Writes its new id into id (PK_UUID_BUFLEN).
 */
void fx_volume_full(struct fx *fx, const char *image, const char *parent,
		    enum pk_volume_format format, enum pk_volume_role role,
		    enum pk_volume_legality legality, uint64_t generation, char *id);
/* A LEGAL leaf (COW over parent, RAW without), generation 1. */
void fx_volume(struct fx *fx, const char *image, const char *parent, char *id);

/* Changes a volume's role/legality in its tags (as UpdateVolumeMeta would); 0 keeps one. */
void fx_volume_update(struct fx *fx, const char *id, enum pk_volume_role role,
		      enum pk_volume_legality legality);

/* An image of base (RAW) <- leaf (COW); ids written to the buffers. */
void fx_image(struct fx *fx, char *image, char *base, char *leaf);

bool fx_exists(const char *path);

/* The mapper's command log (heap, caller frees). */
char *fx_control(struct fx *fx);

#endif
