/*
 * maildir.h — deliver one message into a Maildir.
 *
 * The Maildir layout (https://cr.yp.to/proto/maildir.html): the file is
 * written under tmp/ with a unique name, fsynced, renamed into new/, and
 * new/ is fsynced, so the message is on disk before we report success.
 * Deliveries running at the same time into the same new/ share its fsync
 * (group commit, util/groupsync.h).
 * The spool file's CRLF line ends become LF (Maildir files are Unix text,
 * as qmail-local and Postfix local write them), and trace headers
 * (Return-Path:, Delivered-To:) are prepended, RFC 5321 §4.4.
 *
 * Blocking: call it on a worker thread.
 *
 * SECURITY: dir usually holds a recipient's address; maildir_dir_check()
 * refuses what could leave the intended tree (a ".." component) or be cut
 * or misread (NUL, control characters).  Mapping addresses to safe names
 * is the config's job (lua/luasmtpd/util.lua, util.maildir_path).
 */
#ifndef LUASMTPD_MAILDIR_H
#define LUASMTPD_MAILDIR_H

#include <limits.h>
#include <stddef.h>

/* Room under dir for "/new/" + a unique name + ",S=<size>". */
#define MAILDIR_DIR_MAX		(PATH_MAX - 512)

/*
 * Whether the len bytes at dir may name a Maildir: not empty, at most
 * MAILDIR_DIR_MAX bytes, no NUL, no control character (0x01-0x1f, 0x7f),
 * no ".." component.  Returns NULL if so, else a static reason.
 */
const char *maildir_dir_check(const char *dir, size_t len);

/*
 * Deliver spool_path into the Maildir at dir, creating dir/{tmp,new,cur}
 * if needed.  prefix (may be NULL) is written first, as is.  On success
 * returns 0 and the new file's path in out; on failure -1 and a reason.
 */
int	maildir_deliver(const char *dir, const char *spool_path,
	    const char *prefix, const char *hostname, char *out, size_t outsz,
	    char *err, size_t errlen);

#endif
