/*
 * libFuzzer target: spmd's task records (spm/tasks.c), as spm_tasks_new
 * reads them back from the state directory. A record that parses must
 * encode into text that parses to the same task. And the other way: a
 * failed task whose error message is the input (whatever LVM printed or
 * a request named) must encode into a record that parses back to that
 * task, its message on one line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm/tasks.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void message_roundtrip(const char *text)
{
	struct spm_task_info t = {
		.id = "66666666-6666-4666-8666-666666666666",
		.verb = "extend_volume",
		.state = SPM_TASK_FAILED,
		.error = { PK_E_NO_SPACE, "" },
		.created_ms = 1,
		.finished_ms = 2,
		.progress = 100,
	};
	struct spm_task_info again;
	char *enc;

	snprintf(t.error.message, sizeof(t.error.message), "%s", text);
	enc = spm_task_record_encode(&t);
	if (spm_task_record_parse(enc, &again) < 0 || strcmp(again.id, t.id) ||
	    again.state != t.state || again.error.code != t.error.code ||
	    again.progress != t.progress || strlen(again.error.message) != strlen(t.error.message) ||
	    strpbrk(again.error.message, "\r\n")) {
		abort();
	}
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct spm_task_info t, again;
	char *enc;

	if (spm_task_record_parse(text, &t) == 0) {
		/* A message is written on one line (a lone '\r' survives parse). */
		for (char *p = t.error.message; *p; p++) {
			*p = *p == '\r' ? ' ' : *p;
		}
		enc = spm_task_record_encode(&t);
		if (spm_task_record_parse(enc, &again) < 0 || strcmp(t.id, again.id) ||
		    strcmp(t.verb, again.verb) || t.state != again.state ||
		    strcmp(t.domain_id, again.domain_id) || strcmp(t.image_id, again.image_id) ||
		    strcmp(t.volume_id, again.volume_id) || t.created_ms != again.created_ms ||
		    t.finished_ms != again.finished_ms || t.progress != again.progress ||
		    t.error.code != again.error.code ||
		    strcmp(t.error.message, again.error.message)) {
			abort();
		}
		free(enc);
	}
	free(text);
	text = fuzz_strndup(data, size);
	message_roundtrip(text);
	free(text);
	return 0;
}
