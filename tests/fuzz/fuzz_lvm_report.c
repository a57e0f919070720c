/*
 * libFuzzer target: the LVM report parser (common/lvm_text_report.c), on
 * `vgs` and `lvs --segments` rows in LVM's --nameprefixes form. The first
 * byte picks the report (even: lvs, odd: vgs); the parsers work in place
 * and must fill their result only on success, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/lvm_text.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	struct pk_error err;

	if (size < 1) {
		return 0;
	}
	text = fuzz_strndup(data + 1, size - 1);
	if (data[0] & 1) {
		struct pk_lvm_vg vg = { 0 };

		if (pk_lvm_report_vg_parse(text, &vg, &err) == 0) {
			pk_lvm_vg_release(&vg);
		}
	} else {
		struct pk_lvm_lv_list list = { 0 };

		if (pk_lvm_report_lvs_parse(text, &list, &err) == 0) {
			pk_lvm_lv_list_release(&list);
		}
	}
	free(text);
	return 0;
}
