/*
 * libFuzzer target: the libvirt domain XML hsmd reads (hsm/vmxml_parse.c
 * over hsm/xmldoc.c): a whole domain (disks, backing chains, mirrors, our
 * <pk:vm> metadata) and the metadata element alone. Whatever parses must
 * be consistent: every drive of the metadata is found by its target.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "hsm/vmxml.h"
#include "hsm/xmldoc.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *xml = fuzz_strndup(data, size);
	struct hsm_vmxml_domain dom = { 0 };
	struct hsm_drive_id *drives = NULL;
	struct pk_error err;
	size_t n = 0;

	hsm_xml_init();
	xmlSetGenericErrorFunc(NULL, quiet);
	if (hsm_vmxml_domain_parse(xml, &dom, &err) == 0) {
		for (size_t i = 0; i < dom.ndisks; i++) {
			if (hsm_vmxml_domain_disk(&dom, dom.disks[i].target) == NULL) {
				abort();
			}
		}
		hsm_vmxml_domain_release(&dom);
	}
	if (hsm_vmxml_metadata_parse(xml, &drives, &n, &err) == 0) {
		free(drives);
	}
	free(xml);
	return 0;
}
