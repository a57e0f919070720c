/*
 * libFuzzer target: spmd's task records (spm/tasks.c), as spm_tasks_new
 * reads them back from the state directory. A record that parses must
 * encode into text that parses to the same task.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spm/tasks.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct spm_task_info t, again;
	char *enc;

	if (spm_task_record_parse(text, &t) == 0) {
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
	return 0;
}
