/*
 * lua_deliver_net.c — deliver.lmtp and deliver.smtp (placeholder: the
 * client engine lands here).
 */
#include "lua/lua_deliver.h"

void
lb_deliver_register_net(lua_State *L)
{
	(void)L;
}
