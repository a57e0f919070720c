/*
 * libFuzzer target: the JSON hsmd reads from qemu-img (hsm/qemu_img.c):
 * `info` of one image, and the numbers of `check` and `measure`
 * (image-end-offset, fully-allocated, ...). No crash, no leak, and what
 * info parses names a file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "hsm/qemu_img.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const number_keys[] = {
	"image-end-offset", "fully-allocated", "required", "virtual-size", "actual-size",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_strndup(data, size);
	struct hsm_qemu_img_info info = { 0 };
	struct pk_error err;
	uint64_t v;

	if (hsm_qemu_img_info_parse(json, &info, &err) == 0) {
		if (!info.filename) {
			abort();
		}
		hsm_qemu_img_info_release(&info);
	}
	for (size_t i = 0; i < sizeof(number_keys) / sizeof(number_keys[0]); i++) {
		(void)hsm_qemu_img_json_u64(json, number_keys[i], &v);
	}
	free(json);
	return 0;
}
