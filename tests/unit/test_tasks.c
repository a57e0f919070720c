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

/* Finished tasks go after the keep time (an instant given, no sleeping); the rest stay. */
static void test_tasks__finished_tasks_expire(void **state)
{
	struct spm_tasks *tasks = NULL;
	struct spm_task_info info, *list = NULL;
	struct pk_error err, fail;
	char done_id[PK_UUID_BUFLEN], running_id[PK_UUID_BUFLEN], failed_id[PK_UUID_BUFLEN];
	char interrupted_id[PK_UUID_BUFLEN], path[160];
	uint64_t end;
	size_t n;

	(void)state;
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "delete_volume", "d", "i", "u", interrupted_id, &err),
			 0);
	spm_tasks_free(tasks); /* spmd died with it running */
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	spm_tasks_keep(tasks, 60 * 1000);
	assert_int_equal(spm_task_begin(tasks, "create_volume", "d", "i", "v", done_id, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "extend_volume", "d", "i", "x", failed_id, &err), 0);
	assert_int_equal(spm_task_begin(tasks, "delete_volume", "d", "i", "w", running_id, &err), 0);
	spm_task_finish(tasks, done_id, 0, NULL);
	pk_error_set(&fail, PK_E_NO_SPACE, 0, "volume group is full");
	spm_task_finish(tasks, failed_id, -ENOSPC, &fail);
	assert_int_equal(spm_tasks_get(tasks, failed_id, &info, &err), 0);
	end = info.finished_ms;

	/* Just before the keep time: nothing goes. */
	assert_int_equal(spm_tasks_expire(tasks, end + 59 * 1000), 0);
	/* An hour later: the two finished ones go, file and all. */
	assert_int_equal(spm_tasks_expire(tasks, end + 3600 * 1000), 2);
	assert_int_equal(spm_tasks_get(tasks, done_id, &info, &err), -ENOENT);
	assert_int_equal(spm_tasks_get(tasks, failed_id, &info, &err), -ENOENT);
	snprintf(path, sizeof(path), "%s/%s.task", dir, done_id);
	assert_int_equal(access(path, F_OK), -1);
	/* Running, and interrupted (waiting for recovery): kept whatever their age. */
	assert_int_equal(spm_tasks_get(tasks, running_id, &info, &err), 0);
	assert_int_equal(spm_tasks_get(tasks, interrupted_id, &info, &err), 0);
	spm_task_settle(tasks, interrupted_id, SPM_TASK_ROLLED_BACK, "rolled back by recovery");
	assert_int_equal(spm_tasks_get(tasks, interrupted_id, &info, &err), 0);
	assert_int_equal(spm_tasks_expire(tasks, info.finished_ms + 60 * 1000), 1);
	spm_tasks_free(tasks);

	/* What expired stays gone after a restart. */
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	n = spm_tasks_list(tasks, &list);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, running_id);
	free(list);
	spm_tasks_free(tasks);
}

/* TaskList pages: newest first, a cursor per page, bounded size, a bad cursor refused. */
static void test_tasks__list_pages(void **state)
{
	struct spm_tasks *tasks = NULL;
	struct spm_task_info *page = NULL, *all = NULL;
	struct pk_error err;
	char ids[7][PK_UUID_BUFLEN], token[SPM_TASK_TOKEN_BUFLEN], cursor[SPM_TASK_TOKEN_BUFLEN];
	size_t n, seen = 0, pages = 0;

	(void)state;
	assert_int_equal(spm_tasks_new(dir, &tasks, &err), 0);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(spm_task_begin(tasks, "create_volume", "d", "i", "v", ids[i], &err),
				 0);
	}
	/* Newest first even within one millisecond: the order of beginning. */
	assert_int_equal(spm_tasks_list(tasks, &all), 7);
	for (int i = 0; i < 7; i++) {
		assert_string_equal(all[i].id, ids[6 - i]);
	}
	cursor[0] = '\0';
	do {
		assert_int_equal(spm_tasks_page(tasks, cursor, 3, &page, &n, token, &err), 0);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(page[i].id, all[seen + i].id);
		}
		seen += n;
		pages++;
		free(page);
		snprintf(cursor, sizeof(cursor), "%s", token);
		if (pages == 1) {
			/* A task cleared between two pages leaves no gap and no repeat. */
			spm_task_finish(tasks, ids[3], 0, NULL);
			assert_int_equal(spm_tasks_clear(tasks, ids[3], &err), 0);
			seen++; /* all[3] is ids[3] */
		}
	} while (token[0]);
	assert_int_equal(pages, 2);
	assert_int_equal(seen, 7);
	free(all);

	/* Default page size, the maximum, and a cursor no answer gave. */
	assert_int_equal(spm_tasks_page(tasks, NULL, 0, &page, &n, token, &err), 0);
	assert_int_equal(n, 6);
	assert_string_equal(token, "");
	free(page);
	assert_int_equal(spm_tasks_page(tasks, "", SPM_TASK_PAGE_MAX + 1, &page, &n, token, &err),
			 -ERANGE);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "1000"));
	assert_int_equal(spm_tasks_page(tasks, "12.x", 10, &page, &n, token, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "page_token"));
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
		cmocka_unit_test_setup_teardown(test_tasks__finished_tasks_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks__list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks__message_stays_one_line, setup, teardown),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
