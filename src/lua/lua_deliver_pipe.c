/*
 * lua_deliver_pipe.c — deliver.pipe (placeholder: lands here).
 */
#include "lua/lua_deliver.h"

void
lb_deliver_register_pipe(lua_State *L)
{
	(void)L;
}
