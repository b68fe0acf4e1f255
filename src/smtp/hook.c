/*
 * hook.c — the hook implementation pointer and hook names.
 */
#include "smtp/hook.h"

const struct hook_ops *hook_impl;

static const char *hook_names[HOOK_COUNT] = {
	[HOOK_CONNECT] = "connect", [HOOK_HELO] = "helo", [HOOK_MAIL] = "mail",
	[HOOK_RCPT] = "rcpt", [HOOK_DATA] = "data", [HOOK_MESSAGE] = "message",
	[HOOK_RESET] = "reset", [HOOK_DISCONNECT] = "disconnect",
	[HOOK_VRFY] = "vrfy", [HOOK_AUTH] = "auth",
};

const char *
hook_name(enum hook_id id)
{
	return (unsigned)id < HOOK_COUNT ? hook_names[id] : "?";
}
