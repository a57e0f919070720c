/*
 * libFuzzer target: hsmd's merge job records (hsm/merge_job.c), as read
 * back from the state directory after a restart. A record that decodes
 * must encode into text that decodes again and encodes to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/merge_job.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct hsm_merge_job *job = calloc(1, sizeof(*job)), *again = calloc(1, sizeof(*again));
	struct pk_error err;
	char *enc = NULL, *enc2 = NULL;

	if (!job || !again) {
		abort();
	}
	if (hsm_merge_record_decode(text, job, &err) == 0) {
		enc = hsm_merge_record_encode(job);
		if (hsm_merge_record_decode(enc, again, &err) < 0) {
			abort();
		}
		enc2 = hsm_merge_record_encode(again);
		if (strcmp(enc, enc2)) {
			abort();
		}
	}
	free(enc2);
	free(enc);
	free(again);
	free(job);
	free(text);
	return 0;
}
