/*
 * groupsync.h — group commit: one fsync(2) for many waiting threads.
 *
 * groupsync(fd) returns once fsync(2) of fd's inode has completed in a
 * call that started after groupsync was entered.  Threads that arrive
 * while an fsync of the same inode is running wait for the next one,
 * which one of them runs for all of them (leader/follower).  Deliveries
 * that rename their files into the same Maildir new/ directory share one
 * directory fsync instead of one each; no caller is told "durable" before
 * an fsync that started after its own change has finished.
 *
 * Blocking: worker threads only.
 */
#ifndef LUASMTPD_GROUPSYNC_H
#define LUASMTPD_GROUPSYNC_H

/* 0, or -1 with errno (the fsync that covered this call failed). */
int	groupsync(int fd);

#endif
