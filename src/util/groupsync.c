/*
 * groupsync.c — shared fsync(2) per inode (see groupsync.h).
 *
 * Per inode (st_dev, st_ino) a ticket counter: a caller takes ticket t and
 * is done once an fsync that *started* after t was taken has finished
 * (done_upto >= t).  If no fsync of that inode is running, the caller runs
 * one covering every ticket taken so far; otherwise it waits.  Any fd of
 * the inode will do: fsync acts on the inode, not on the descriptor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/groupsync.h"

#define GROUPSYNC_SLOTS	64

struct slot {
	dev_t		dev;
	ino_t		ino;
	unsigned	users;		/* callers inside for this inode */
	bool		running;
	uint64_t	taken;
	uint64_t	done_upto;
	uint64_t	failed_upto;
	int		failed_errno;
};

static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cond = PTHREAD_COND_INITIALIZER;
static struct slot	slots[GROUPSYNC_SLOTS];

/* The slot of an inode in use, or a free one (reset), or NULL if full. */
static struct slot *
slot_of(dev_t dev, ino_t ino)
{
	struct slot *free_slot = NULL;

	for (int i = 0; i < GROUPSYNC_SLOTS; i++) {
		if (slots[i].users > 0 && slots[i].dev == dev &&
		    slots[i].ino == ino)
			return &slots[i];
		if (slots[i].users == 0 && free_slot == NULL)
			free_slot = &slots[i];
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->dev = dev;
		free_slot->ino = ino;
	}
	return free_slot;
}

int
groupsync(int fd)
{
	struct stat st;
	struct slot *g;
	uint64_t ticket;
	int rc = 0;

	if (fstat(fd, &st) != 0)
		return -1;
	pthread_mutex_lock(&lock);
	if ((g = slot_of(st.st_dev, st.st_ino)) == NULL) {
		pthread_mutex_unlock(&lock);
		return fsync(fd);	/* more inodes than slots: alone */
	}
	g->users++;
	ticket = ++g->taken;
	while (g->done_upto < ticket) {
		if (!g->running) {
			uint64_t upto = g->taken;
			int r, e;

			g->running = true;
			pthread_mutex_unlock(&lock);
			r = fsync(fd);
			e = errno;
			pthread_mutex_lock(&lock);
			g->running = false;
			g->done_upto = upto;
			if (r != 0) {
				g->failed_upto = upto;
				g->failed_errno = e;
			}
			pthread_cond_broadcast(&cond);
		} else {
			pthread_cond_wait(&cond, &lock);
		}
	}
	/* Conservative: a failure near our ticket is reported as ours. */
	if (g->failed_upto >= ticket && g->failed_errno != 0) {
		errno = g->failed_errno;
		rc = -1;
	}
	g->users--;
	pthread_mutex_unlock(&lock);
	return rc;
}
