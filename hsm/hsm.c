#include "hsm/hsm.h"

#include <string.h>

#include "common/daemon.h"

int hsm_init(struct hsm *hsm, const struct pk_config *cfg, struct pk_error *err)
{
	(void)err;
	memset(hsm, 0, sizeof(*hsm));
	hsm->cfg = cfg;
	hsm->info.role = "hsm";
	hsm->info.host_id = (int32_t)pk_config_int(cfg, "host_id");
	hsm->info.start_ms = pk_codec_monotonic_ms();
	hsm->info.activation = pk_config_str(cfg, "activation");
	hsm->info.kvm = pk_daemon_kvm_usable();
	return 0;
}

void hsm_release(struct hsm *hsm)
{
	(void)hsm;
}
