#include "common/lvm_text.h"

#include <lvm2cmd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- settings ----------------------------------------------------------- */

/* A path as an anchored regex: '.' and '+' are the only special characters
 * pk_lvm_path_check lets through. */
static void regex_path(FILE *f, const char *path)
{
	fputs("\"a|^", f);
	for (const char *p = path; *p; p++) {
		if (*p == '.' || *p == '+') {
			fprintf(f, "[%c]", *p);
		} else {
			fputc(*p, f);
		}
	}
	fputs("$|\", ", f);
}

char *pk_lvm_settings_render(const char *const *devices, bool activation, unsigned umask,
			     const char *backup_dir)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		abort();
	}
	fputs("# Written by poolkeeper (common/lvm.c) at every start; edits are lost.\n", f);
	fputs("devices {\n", f);
	for (int pass = 0; pass < 2; pass++) {
		fputs(pass == 0 ? "\tfilter = [ " : "\tglobal_filter = [ ", f);
		for (size_t i = 0; devices && devices[i]; i++) {
			regex_path(f, devices[i]);
		}
		fputs("\"r|.*|\" ]\n", f);
	}
	fputs("\tobtain_device_list_from_udev = 0\n"
	      "\texternal_device_info_source = \"none\"\n"
	      "\tuse_devicesfile = 0\n"
	      "\thints = \"none\"\n"
	      "\tmd_component_detection = 0\n"
	      "\tmultipath_component_detection = 0\n"
	      "\tfw_raid_component_detection = 0\n"
	      "\tscan_lvs = 0\n"
	      "}\n",
	      f);
	fprintf(f,
		"global {\n"
		"\tuse_aio = 0\n"
		"\tuse_lvmlockd = 0\n"
		"\tuse_lvmpolld = 0\n"
		"\tnotify_dbus = 0\n"
		"\twait_for_locks = 0\n"
		"\tactivation = %d\n"
		"\tumask = 0%03o\n"
		"}\n",
		activation ? 1 : 0, umask & 0777);
	fputs("activation {\n"
	      "\tudev_sync = 0\n"
	      "\tudev_rules = 0\n"
	      "\tmonitoring = 0\n"
	      "}\n",
	      f);
	if (backup_dir) {
		fprintf(f,
			"backup {\n"
			"\tbackup = 1\n"
			"\tbackup_dir = \"%s/backup\"\n"
			"\tarchive = 1\n"
			"\tarchive_dir = \"%s/archive\"\n"
			"}\n",
			backup_dir, backup_dir);
	} else {
		fputs("backup {\n\tbackup = 0\n\tarchive = 0\n}\n", f);
	}
	fputs("log {\n\tsyslog = 0\n}\n", f);
	if (fclose(f) != 0) {
		abort();
	}
	return text;
}

/* ---- failures ----------------------------------------------------------- */

static bool text_has(const char *text, const char *const *needles)
{
	for (size_t i = 0; needles[i]; i++) {
		if (strstr(text, needles[i])) {
			return true;
		}
	}
	return false;
}

enum pk_errc pk_lvm_classify_failure(int rc, const char *text)
{
	static const char *const busy[] = { "flock failed", "Can't get lock", NULL };
	static const char *const no_space[] = { "insufficient free space",
						"Insufficient free space",
						"Insufficient suitable", NULL };
	static const char *const exists[] = { "already exists", NULL };
	static const char *const in_use[] = { "is already in volume group", " in use",
					      "open logical volume", "Aborted wiping",
					      "exclusively", NULL };
	static const char *const not_found[] = { "not found", "Failed to find",
						 "No device found", "Couldn't find device",
						 "does not exist", NULL };

	if (rc == LVM2_NO_SUCH_COMMAND || rc == LVM2_INVALID_PARAMETERS ||
	    rc == LVM2_INIT_FAILED) {
		return PK_E_INTERNAL;
	}
	if (!text) {
		return PK_E_INTERNAL;
	}
	if (text_has(text, busy)) {
		return PK_E_BUSY;
	}
	if (text_has(text, no_space)) {
		return PK_E_NO_SPACE;
	}
	if (text_has(text, exists)) {
		return PK_E_ALREADY_EXISTS;
	}
	if (text_has(text, in_use)) {
		return PK_E_IN_USE;
	}
	if (text_has(text, not_found)) {
		return PK_E_NOT_FOUND;
	}
	return PK_E_INTERNAL;
}
