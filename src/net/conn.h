/*
 * conn.h — a non-blocking stream connection on libev.
 *
 * A conn owns its socket, its two ev_io watchers and its output buffer.
 * The bytes themselves move through a small vtable (struct conn_ops), so
 * the SMTP code reads and writes the same way over plain TCP and over TLS
 * and never calls OpenSSL itself (like Redis' ConnectionType).
 *
 * The owner gets two callbacks: on_read when input may be available (call
 * conn_read() until CONN_AGAIN), and on_drain when the output buffer has
 * been written out completely after a CONN_AGAIN, or when writing it
 * failed (c->failed is then set and the owner should close).  A transport may need
 * the opposite readiness (TLS reading may need to write); conn handles that
 * and still reports it as on_read/on_drain.
 *
 * The owner must not free the conn from inside a callback; conn_close()
 * stops all watchers and closes the socket, and is safe anywhere.
 *
 * Normally one socket carries both directions.  A session on standard
 * input and output (luasmtpd --stdio over two pipes, or a file) reads one
 * descriptor and writes another: conn_use_pipes() points the writes (and
 * the write watcher) at a second descriptor and swaps in conn_pipe_ops,
 * which read and write like plain ones but answer conn_peek_closed()
 * without MSG_PEEK, which only sockets have.
 */
#ifndef LUASMTPD_CONN_H
#define LUASMTPD_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

/* Results of conn_read(), conn_write() and conn_flush(). */
#define CONN_OK		0
#define CONN_AGAIN	(-1)
#define CONN_EOF	(-2)
#define CONN_ERR	(-3)

/* What a transport operation waits for after CONN_AGAIN. */
enum conn_want {
	CONN_WANT_NONE,
	CONN_WANT_READ,
	CONN_WANT_WRITE,
};

struct conn;

struct conn_ops {
	const char	*name;
	/* > 0 bytes, or CONN_AGAIN (set *want), CONN_EOF, CONN_ERR */
	ssize_t		(*read)(struct conn *, void *, size_t, enum conn_want *);
	/* > 0 bytes, or CONN_AGAIN (set *want), CONN_ERR */
	ssize_t		(*write)(struct conn *, const void *, size_t,
			    enum conn_want *);
	/* Free transport state; the socket is closed by conn. */
	void		(*shutdown)(struct conn *);
	/* Bytes the transport has decrypted but we have not read. */
	size_t		(*pending)(struct conn *);
	/* One handshake step: CONN_OK, CONN_AGAIN (set *want), CONN_ERR. */
	int		(*handshake)(struct conn *, enum conn_want *);
	/* conn_peek_closed() for this transport; NULL: a MSG_PEEK. */
	int		(*peek_closed)(struct conn *);
};

typedef void (*conn_cb)(void *owner);

struct conn {
	struct ev_loop		*loop;
	int			 fd;		/* reads (and writes) */
	int			 wfd;		/* writes: fd, or a pipe's */
	ev_io			 rio;
	ev_io			 wio;
	const struct conn_ops	*ops;
	void			*transport;	/* e.g. SSL *, owned by ops */
	struct buf		 out;
	void			*owner;
	conn_cb			 on_read;
	conn_cb			 on_drain;
	bool			 want_read;	/* owner wants input */
	bool			 read_needs_write; /* transport read blocked */
	bool			 write_needs_read; /* transport write blocked */
	bool			 closed;
	bool			 failed;	/* a read or write failed */
	bool			 linger;	/* close with a lingering close */
	bool			 handshaking;
	enum conn_want		 hs_want;
	void			(*hs_done)(void *owner, bool ok);
	char			 error[128];	/* last transport error */
};

extern const struct conn_ops conn_plain_ops;
extern const struct conn_ops conn_pipe_ops;

void	conn_init(struct conn *, struct ev_loop *, int fd, void *owner,
	    conn_cb on_read, conn_cb on_drain);
/*
 * Read from the conn's fd and write to wfd (both owned by the conn from
 * now on): standard input and output that are not one socket.  Call it
 * right after conn_init, before anything is read or written.
 */
void	conn_use_pipes(struct conn *, int wfd);
/*
 * Ask for (or stop asking for) on_read callbacks.  Turning reading on
 * while the transport holds input it has already taken from the socket
 * (TLS records OpenSSL decrypted) queues an on_read: the socket will not
 * become readable for bytes that are no longer in it.
 */
void	conn_want_read(struct conn *, bool);
/* Queue an on_read callback from the loop (never calls it directly). */
void	conn_kick_read(struct conn *);
ssize_t	conn_read(struct conn *, void *, size_t);
/* Queue bytes; -1 if the output bound would be exceeded. */
int	conn_send(struct conn *, const void *, size_t);
/* Write queued bytes: CONN_OK (all written), CONN_AGAIN, CONN_ERR. */
int	conn_flush(struct conn *);
size_t	conn_out_pending(const struct conn *);
/* Replace the transport (STARTTLS, implicit TLS). */
void	conn_set_transport(struct conn *, const struct conn_ops *, void *);
/*
 * Run the transport's handshake; no on_read/on_drain callbacks meanwhile.
 * done(owner, ok) is called from an event callback (or at once).
 */
void	conn_handshake(struct conn *, void (*done)(void *owner, bool ok));
/*
 * For an owner that is not reading (busy): 1 if the peer has closed its
 * side and nothing is left unread, 0 if input is waiting, -1 if neither.
 * Consumes nothing (MSG_PEEK).
 */
int	conn_peek_closed(struct conn *);
/*
 * Stop watchers, free the transport, close the socket (and a separate
 * write descriptor).  Idempotent.
 */
void	conn_close(struct conn *);

#endif
