/*
 * front.h - the FastCGI front: the connections the web server opens to this
 * process, and the request threads that serve them.
 *
 * The design choice a reader must know: no thread ever waits on a connection
 * that has no request on it. The listener and every connection without a
 * request in hand (new ones, and the ones the web server keeps open between
 * requests: nginx fastcgi_keep_conn, Apache enablereuse) sit in one epoll set,
 * each armed for one event (EPOLLONESHOT). The request threads that are idle
 * wait in epoll_wait() on it, and the thread that sees a connection become
 * readable serves that request itself: no poller hands it over, and a thread
 * that puts a kept connection back rearms it without waking anyone. A new
 * connection whose request is already there is served by the thread that
 * accepted it. So idle kept connections cost a file descriptor, never a
 * thread, and cannot starve new connections; the listener is only watched by
 * idle threads, so a busy process leaves new connections to its siblings on
 * the same socket.
 */
#ifndef WAHOOK_FRONT_H
#define WAHOOK_FRONT_H

#include "http.h"
#include "store.h"

/*
 * Serves FastCGI on the listening socket at fd 0 (FCGI_LISTENSOCK_FILENO)
 * with cfg->threads request threads, each with a copy of *proto (cfg and
 * batch shared, buffers its own), until SIGTERM, SIGINT or SIGUSR1: then no
 * connection is accepted, idle kept ones are closed, and every request in
 * hand is answered before it returns. Before the first thread starts, store
 * (the process's connection, not yet shared) is tried once, and a database
 * that cannot be used is a warning in the log. Signals are taken by the
 * calling thread alone. Returns 0, or 1 when the front could not start.
 */
int	front_serve(const struct http_state *proto, struct store *store);

/*
 * Writes the CGI/FastCGI head of r (Status line, headers, blank line) into h.
 * Returns its length, or -1 when it does not fit in hlen.
 */
int	front_format_head(char *h, size_t hlen, const struct http_resp *r);

#endif
