/*
 * media_file.c - temp files for downloads (see media_file.h). Writeback is
 * started every few megabytes (sync_file_range), so the fsync before the
 * rename has little left to do and does not stall the drain loop for long.
 */
#include "media_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define WRITEBACK_EVERY	(8LL * 1024 * 1024)

void
media_file_init(struct media_file *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

int
media_file_open(struct media_file *f, const char *dir, int keep_name, char *err,
    size_t errlen)
{
	media_file_init(f);
	if ((size_t)snprintf(f->tmp, sizeof(f->tmp), "%s/%sXXXXXX", dir, MEDIA_TMP_PREFIX) >=
	    sizeof(f->tmp)) {
		snprintf(err, errlen, "temp file name too long");
		goto fail;
	}
	if ((f->fd = mkostemp(f->tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "temp file in %s: %s", dir, strerror(errno));
		goto fail;
	}
	f->named = 1;
	if (!keep_name) {
		unlink(f->tmp);
		f->named = 0;
	}
	if ((f->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "out of memory (sha256)");
		goto fail;
	}
	return 0;
fail:
	media_file_close(f);
	return -1;
}

int
media_file_write(struct media_file *f, const void *p, size_t n)
{
	const char *c = p;
	size_t left = n;
	ssize_t w;

	while (left > 0) {
		if ((w = write(f->fd, c, left)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		left -= (size_t)w;
	}
	if (EVP_DigestUpdate(f->md, p, n) != 1)
		return -1;
	f->size += (long long)n;
	if (f->named && f->size - f->synced >= WRITEBACK_EVERY) {
		/* start writeback now; the final fsync then finds little to do */
		sync_file_range(f->fd, f->synced, f->size - f->synced, SYNC_FILE_RANGE_WRITE);
		f->synced = f->size;
	}
	return 0;
}

void
media_file_digest(struct media_file *f, unsigned char out[MEDIA_SHA_LEN])
{
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	unsigned int n = 0;

	memset(out, 0, MEDIA_SHA_LEN);
	if (copy == NULL)
		return;
	if (EVP_MD_CTX_copy_ex(copy, f->md) == 1)
		EVP_DigestFinal_ex(copy, out, &n);
	EVP_MD_CTX_free(copy);
}

ssize_t
media_file_read(struct media_file *f, long long off, void *buf, size_t n)
{
	ssize_t r;

	do
		r = pread(f->fd, buf, n, (off_t)off);
	while (r == -1 && errno == EINTR);
	return r;
}

int
media_file_commit(struct media_file *f, const char *dir, const char *hex, char *path,
    size_t pathlen, char *err, size_t errlen)
{
	int dfd = -1, rc = -1;

	if ((size_t)snprintf(path, pathlen, "%s/%s", dir, hex) >= pathlen) {
		snprintf(err, errlen, "file name too long");
		goto fail;
	}
	if (fsync(f->fd) == -1) {
		snprintf(err, errlen, "fsync: %s", strerror(errno));
		goto fail;
	}
	if (rename(f->tmp, path) == -1) {
		snprintf(err, errlen, "rename into %s: %s", dir, strerror(errno));
		goto fail;
	}
	f->named = 0;	/* the name is the final one now: close must not remove it */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || fsync(dfd) == -1) {
		snprintf(err, errlen, "fsync of %s: %s", dir, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	if (dfd != -1)
		close(dfd);
	media_file_close(f);
	return rc;
}

void
media_file_close(struct media_file *f)
{
	if (f == NULL)
		return;
	if (f->fd != -1)
		close(f->fd);
	if (f->named)
		unlink(f->tmp);
	EVP_MD_CTX_free(f->md);
	media_file_init(f);
}

int
media_file_clean(const char *dir, double older_than)
{
	DIR *d;
	struct dirent *e;
	struct stat st;
	time_t now = time(NULL);
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, MEDIA_TMP_PREFIX, sizeof(MEDIA_TMP_PREFIX) - 1) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode) || difftime(now, st.st_mtime) < older_than)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}
