/* SPM task records (spm/tasks.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "spm/tasks.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pk-test-tasks-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_tasks__lifecycle_and_reload(void **state)
{
	struct spm_tasks *tasks = NULL;
	struct spm_task_info info, *list = NULL;
	struct pk_error err, fail;
	char done_id[PK_UUID_BUFLEN], running_id[PK_UUID_BUFLEN], failed_id[PK_UUID_BUFLEN];
	size_t n;

	(void)state;
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "create_volume", "d", "i", "v", done_id, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "delete_volume", "d", "i", "w", running_id, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "extend_volume", "d", "i", "x", failed_id, &err), 0);
	spm_task_finish(tasks, done_id, 0, NULL);
	pk_error_set(&fail, PK_E_NO_SPACE, 0, "volume group is full");
	spm_task_finish(tasks, failed_id, -ENOSPC, &fail);
	assert_int_equal(spm_tasks_get(tasks, done_id, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_DONE);
	assert_int_equal(info.progress, 100);
	/* The errno agrees with the code (CONFLICT, not BUSY: retrying will not help). */
	assert_int_equal(spm_tasks_clear(tasks, running_id, &err), -pk_errc_errno(PK_E_CONFLICT));
	assert_int_equal(err.code, PK_E_CONFLICT);
	n = spm_tasks_list(tasks, &list);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].id, failed_id); /* newest first */
	free(list);
	spm_tasks_free(tasks);

	/* A restart: the running one is interrupted; the others keep their end. */
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	assert_int_equal(spm_tasks_get(tasks, failed_id, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_FAILED);
	assert_int_equal(info.error.code, PK_E_NO_SPACE);
	assert_string_equal(info.error.message, "volume group is full");
	n = spm_tasks_interrupted(tasks, &list);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, running_id);
	assert_string_equal(list[0].verb, "delete_volume");
	assert_string_equal(list[0].volume_id, "w");
	free(list);
	spm_task_settle(tasks, running_id, SPM_TASK_DONE, "finished after an spmd restart");
	n = spm_tasks_interrupted(tasks, &list);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(spm_tasks_clear(tasks, done_id, &err), 0);
	assert_int_equal(spm_tasks_get(tasks, done_id, &info, &err), -ENOENT);
	assert_int_equal(spm_tasks_clear(tasks, done_id, &err), -ENOENT);
	spm_tasks_free(tasks);

	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	n = spm_tasks_list(tasks, &list);
	assert_int_equal(n, 2);
	free(list);
	assert_int_equal(spm_tasks_get(tasks, running_id, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_DONE);
	spm_tasks_free(tasks);
}

/*
 * An error message is written on one line: one with line breaks (LVM's
 * output, a name quoted from a request) cannot add fields to the record
 * that the next spmd reads back.
 */
static void test_tasks__message_stays_one_line(void **state)
{
	struct spm_tasks *tasks = NULL;
	struct spm_task_info info;
	struct pk_error err, fail;
	char id[PK_UUID_BUFLEN];

	(void)state;
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "extend_volume", "d", "i", "v", id, &err), 0);
	pk_error_set(&fail, PK_E_NO_SPACE, 0, "lvextend:\nstate=DONE\r\nerror_code=OK");
	spm_task_finish(tasks, id, -ENOSPC, &fail);
	spm_tasks_free(tasks);

	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	assert_int_equal(spm_tasks_get(tasks, id, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_FAILED);
	assert_int_equal(info.error.code, PK_E_NO_SPACE);
	assert_string_equal(info.error.message, "lvextend: state=DONE  error_code=OK");
	spm_tasks_free(tasks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tasks__lifecycle_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks__message_stays_one_line, setup, teardown),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
