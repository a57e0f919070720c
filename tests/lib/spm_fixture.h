/*
 * A small SPM served over nng in the test's process, on the volumes of a
 * test hsmd (tests/lib/hsm_fixture.h): the fake LVM's tags are its
 * metadata. Verbs: ExtendVolume, UpdateVolumeMeta, ImagePrepared (what
 * hsmd calls) and ImageChain, CreateVolume, DeleteVolume (what pkctl's
 * flows call). It runs one request at a time, as the real one holds its
 * volume locks, so its workers, hsmd's job threads and the test thread may
 * all touch the fake LVM.
 *
 * Rules of the fake, where they matter to the tests: ImageChain orders the
 * chain by the common rule (common/volchain.h), the rest of the image are
 * orphans; CreateVolume makes a LEGAL COW leaf over parent_id with its
 * mapper file and its backing declared to the fake libvirt (as
 * fx_volume_full); UpdateVolumeMeta with changes applies them in order in
 * one request (readers see all or none); DeleteVolume refuses (IN_USE) a volume another volume
 * names as parent and, unless forced, a LEAF or a volume the host reported
 * prepared (ImagePrepared per volume; one without a volume clears them
 * all), and otherwise removes the LV.
 *
 * Owned by the test: spm_fixture_start in a setup, spm_fixture_stop in its
 * teardown (before fx_teardown). The counters may be read at any time;
 * fail_updates and fail_extends may be set at any time.
 */
#ifndef TESTS_LIB_SPM_FIXTURE_H
#define TESTS_LIB_SPM_FIXTURE_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"
#include "tests/lib/hsm_fixture.h"

struct spm_fixture_server; /* the nng server and its dispatcher */

struct spm_fixture {
	struct fx *fx;
	char url[256]; /* ipc://<fx tmp>/spm.sock */
	atomic_int extends, updates, prepared, chains, creates, deletes; /* requests seen */
	atomic_int fail_updates; /* the next N UpdateVolumeMeta answer UNAVAILABLE */
	atomic_int fail_extends; /* the next N ExtendVolume answer NOT_SPM (no SPM yet) */
	atomic_int fail_prepared; /* the next N ImagePrepared answer UNAVAILABLE */
	struct spm_fixture_server *srv;
};

/* Starts serving fx's volumes (fails the test when it cannot); *ret freed by stop. */
void spm_fixture_start(struct fx *fx, struct spm_fixture **ret);
/* Stops serving and frees spm (NULL: nothing). */
void spm_fixture_stop(struct spm_fixture *spm);

/* A volume's metadata as the SPM sees it (the tags), and its LV size when lv_size != NULL. */
int spm_fixture_meta(struct fx *fx, const char *id, struct pk_volume_meta *m, uint64_t *lv_size,
		     struct pk_error *err);

#endif
