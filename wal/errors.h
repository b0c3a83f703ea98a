/* errors.h - chronik's error convention.
 *
 * Every function that can fail returns int: 0 on success, -errno for system
 * errors, or one of the project's own codes below. The project's codes sit in
 * a reserved negative band far from any errno, so one int carries both and
 * chronik_strerror() names either.
 */
#ifndef CHRONIK_ERRORS_H
#define CHRONIK_ERRORS_H

enum {
	CHRONIK_ERR_BASE = -30800,
	CHRONIK_ECORRUPT = CHRONIK_ERR_BASE, /* invalid frame or batch before the tail */
	CHRONIK_EVERSION = CHRONIK_ERR_BASE - 1, /* unknown frame version / batch magic */
	CHRONIK_ELOCKED = CHRONIK_ERR_BASE - 2, /* data directory held by another process */
	CHRONIK_EBADCRC = CHRONIK_ERR_BASE - 3, /* Kafka batch CRC32C mismatch */
	CHRONIK_ECODEC = CHRONIK_ERR_BASE - 4, /* compression codec not available */
	CHRONIK_ENOTOPIC = CHRONIK_ERR_BASE - 5, /* unknown topic or partition */
	CHRONIK_ETOPICEXISTS = CHRONIK_ERR_BASE - 6, /* topic already exists */
	CHRONIK_EBADNAME = CHRONIK_ERR_BASE - 7, /* name breaks Kafka's naming rule */
	CHRONIK_ERANGE = CHRONIK_ERR_BASE - 8, /* offset outside [log start, next offset] */
	CHRONIK_ELIMIT = CHRONIK_ERR_BASE - 9, /* max.topics or max.partitions reached */
	CHRONIK_ENOSTORE = CHRONIK_ERR_BASE - 10, /* a remote segment, no object store attached */
	CHRONIK_ERR_LAST = CHRONIK_ERR_BASE - 10,
};

/* A static string naming err (a -errno or a CHRONIK_E* code). Never NULL. */
const char *chronik_strerror(int err);

/* Map a chronik error to a positive errno for a front-end that speaks errno
 * (fs/): CHRONIK_ENOTOPIC -> ENOENT, CHRONIK_EBADNAME -> EINVAL, ... */
int chronik_errno(int err);

#endif
