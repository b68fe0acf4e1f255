/*
 * metrics_http.h — the Prometheus endpoint: a listener of its own that
 * answers `GET /metrics` (HTTP/1.0 or 1.1) with metrics_render()'s text
 * and closes.  See metrics_http.c for the bounds.
 */
#ifndef LUASMTPD_METRICS_HTTP_H
#define LUASMTPD_METRICS_HTTP_H

#include <ev.h>
#include <stdbool.h>

/* The `metrics` setting (lua/lua_config_obs.c). */
struct metrics_http_config {
	bool	 enabled;
	char	 address[64];	/* numeric IPv4 or IPv6 */
	int	 port;		/* 0: the kernel chooses (tests) */
};

/*
 * Bind and listen (logs "metrics listening addr=IP:PORT").  Returns 0, or
 * -1 after logging why.  Nothing happens when the config is not enabled.
 */
int	metrics_http_open(struct ev_loop *, const struct metrics_http_config *);
/* Close the listener and every client (at exit, not from a callback). */
void	metrics_http_close(void);

#endif
