/*
 * libFuzzer target: the lab mapper's control-command parser. Whatever is
 * written to <mount>/.control must be refused cleanly or parse into a
 * table that formats back into a command that parses to the same table.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lvmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pk_lvmap_table t = { 0 }, again = { 0 };
	enum pk_lvmap_op op, op2;
	struct pk_error err;
	char *cmd = NULL;

	if (pk_lvmap_command_parse((const char *)data, size, &op, &t, &err) < 0) {
		return 0;
	}
	if (pk_lvmap_command_format(op, &t, &cmd, &err) == 0) {
		if (pk_lvmap_command_parse(cmd, strlen(cmd), &op2, &again, &err) < 0 || op2 != op ||
		    again.nsegments != t.nsegments ||
		    pk_lvmap_table_size(&again) != pk_lvmap_table_size(&t)) {
			abort();
		}
		free(cmd);
		pk_lvmap_table_release(&again);
	}
	pk_lvmap_table_release(&t);
	return 0;
}
