/*
 * fsutil.h — small filesystem helpers for durable writes.
 */
#ifndef LUASMTPD_FSUTIL_H
#define LUASMTPD_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p; the new directories' parents are fsynced.  0 or -1/errno. */
int	mkdir_p(const char *path, mode_t mode);
/* fsync(2) a directory so a rename or create in it is durable. */
int	fsync_dir(const char *path);
/* write(2) all of p, retrying on EINTR and short writes. 0 or -1/errno. */
int	write_all(int fd, const void *p, size_t n);
/* The directory part of path into out (like dirname(3), no aliasing). */
void	path_dir(const char *path, char *out, size_t outsz);

#endif
