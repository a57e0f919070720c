/*
 * The fixture of the merge tests (test_merge.c, test_ctl_flow.c): the test
 * hsmd of tests/lib/hsm_fixture.h with its merge subsystem publishing
 * events, the in-process SPM of tests/lib/spm_fixture.h attached to it, the
 * chain B (RAW) <- S1 (COW) <- S2 (COW, leaf) of real image files (so
 * qemu-img runs for real) under a running VM "vm1" (drive vda), and the
 * helpers the cases share.
 *
 * A test that uses it names `pk-test-fakes: fake_lvm fake_virt`. Helpers
 * fail the running test (cmocka) instead of returning errors, so they are
 * called from the test's thread only. State is per test (mfx_setup /
 * mfx_teardown as cmocka setup and teardown; *state is a struct mfx).
 */
#ifndef TESTS_LIB_MERGE_FIXTURE_H
#define TESTS_LIB_MERGE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"
#include "common/uuid.h"
#include "hsm/hsm.h"
#include "hsm/merge.h"
#include "tests/fakes/fake_virt.h"
#include "tests/lib/hsm_fixture.h"
#include "tests/lib/spm_fixture.h"

struct mfx {
	struct fx *fx;
	struct spm_fixture *spm;
	char img[PK_UUID_BUFLEN];
	char b[PK_UUID_BUFLEN], s1[PK_UUID_BUFLEN], s2[PK_UUID_BUFLEN];
	char events[256]; /* hsmd's event URL */
	struct hsm_settings settings;
	struct hsm_merge_config merge; /* the merge subsystem's settings (events_url set
					* by the fixture); changed by mfx_merge_restart */
};

int mfx_setup(void **state);
int mfx_teardown(void **state);

/* Runs a command (argv[0] from PATH) that must succeed within 30 s. */
void mfx_run(const char *const *argv);
/* The file the mapper serves for volume id. */
void mfx_mapper_file(struct mfx *t, const char *id, char *buf, size_t size);

uint64_t mfx_now_ms(void);
/* Sleeps; only between polls of a condition (mfx_wait_*), never as synchronisation. */
void mfx_sleep_ms(unsigned ms);

/* Waits (10 s) until the job is in state want, failing the test at a final other state. */
struct hsm_merge_job_info mfx_wait_state(struct mfx *t, const char *id, enum hsm_merge_state want);
/* Waits (10 s) until the job reports cur and end. */
struct hsm_merge_job_info mfx_wait_progress(struct mfx *t, const char *id, uint64_t cur,
					    uint64_t end);
/* Waits (10 s) until the fake libvirt saw n calls of op. */
void mfx_wait_calls(enum fake_virt_op op, unsigned n);

/* hsm_merge_begin on vm1/vda; fails the test when refused. */
struct hsm_merge_job_info mfx_merge(struct mfx *t, const char *base, const char *top,
				    enum hsm_merge_direction dir);
/* hsm_merge_begin must fail with code. */
void mfx_expect_error(struct mfx *t, const struct hsm_merge_request *req, enum pk_errc code);

/* A volume's metadata (its tags). */
struct pk_volume_meta mfx_meta(struct mfx *t, const char *id);
/* True when the image's link of volume id exists (it is prepared). */
bool mfx_linked(struct mfx *t, const char *id);
/* The fake's live chain of vm1/vda is exactly a <- b <- c (b, c may be NULL), as volume ids. */
void mfx_assert_chain(struct mfx *t, const char *a, const char *b, const char *c);
/* The leaf the stopped VM's definition names, by hsm_merge_live_read, and our metadata agree. */
void mfx_assert_defined_leaf(struct mfx *t, const char *want);

/* hsmd "restarts": the subsystem stops and a new one reads the records. */
void mfx_restart(struct mfx *t);
/* hsmd restarts with t->merge (new merge settings). */
void mfx_merge_restart(struct mfx *t);

#endif
