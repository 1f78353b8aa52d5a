/*
 * media_file.h - a download's bytes on disk while they arrive: one temp file
 * per fetch, hashed (SHA-256) as it is written, so memory stays flat whatever
 * the size. In directory mode the temp file lives in WAHOOK_MEDIA_DIR and is
 * committed atomically (fsync, rename to its sha256, fsync of the directory);
 * in database mode it is unlinked at once (nothing is left behind by a crash)
 * and read back in chunks for the upload.
 */
#ifndef WAHOOK_MEDIA_FILE_H
#define WAHOOK_MEDIA_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "media_meta.h"

#define MEDIA_TMP_PREFIX	".wahook-tmp-"
#define MEDIA_PATH_MAX		512

struct media_file {
	int		 fd;		/* -1 when closed */
	int		 named;		/* the temp file has a name (directory mode) */
	long long	 size;		/* bytes written */
	long long	 synced;	/* bytes handed to writeback so far */
	void		*md;		/* EVP_MD_CTX */
	char		 tmp[MEDIA_PATH_MAX];
};

/* Marks f closed (call once before media_file_open or media_file_close). */
void	media_file_init(struct media_file *f);

/*
 * Creates a temp file in dir (MEDIA_TMP_PREFIX + random); keep_name 0 unlinks
 * it at once. Returns 0, or -1 with the reason in err (errno text, no data).
 */
int	media_file_open(struct media_file *f, const char *dir, int keep_name, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* Appends n bytes and hashes them. Returns 0, or -1 (disk full, I/O error). */
int	media_file_write(struct media_file *f, const void *p, size_t n)
	    __attribute__((warn_unused_result));

/* The SHA-256 of everything written so far (the file stays open). */
void	media_file_digest(struct media_file *f, unsigned char out[MEDIA_SHA_LEN]);

/* Reads up to n bytes at off; returns the count, or -1. */
ssize_t	media_file_read(struct media_file *f, long long off, void *buf, size_t n);

/*
 * Directory mode: makes the bytes durable under dir/<hex> (fsync, rename over
 * any file of that name - same name, same bytes - then fsync of dir), closes f
 * and writes the final path into path. Returns 0, or -1 with the reason in err
 * (the temp file is then removed).
 */
int	media_file_commit(struct media_file *f, const char *dir, const char *hex,
	    char *path, size_t pathlen, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Closes f and removes its temp file if it has a name (NULL or closed is fine). */
void	media_file_close(struct media_file *f);

/*
 * Removes MEDIA_TMP_PREFIX files in dir not modified for older_than seconds:
 * what a drainer killed between write and rename left behind. A live fetch
 * writes at least every WAHOOK_HTTP_TIMEOUT, so older_than twice the lease
 * never touches one. Returns the number removed, or -1 when dir is unreadable.
 */
int	media_file_clean(const char *dir, double older_than);

#endif
