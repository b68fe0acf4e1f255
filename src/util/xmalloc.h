/*
 * xmalloc.h — allocation that dies instead of failing.
 *
 * Acceptable only because every input is bounded (limits.h): running out
 * of memory here is a broken environment, not something a client caused.
 */
#ifndef LUASMTPD_XMALLOC_H
#define LUASMTPD_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

#endif
