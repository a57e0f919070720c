/* pkctl image prepare|teardown: hsmd verbs on this host's view of images. */
#include "ctl/ctl.h"

int ctl_cmd_image_hsm(struct ctl *ctl, int argc, char **argv)
{
	(void)argc;
	return ctl_usage_error(ctl, "'image %s' is not available yet", argv[1]);
}
