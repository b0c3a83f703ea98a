/* errors.c - names for chronik's error codes and their errno mapping.
 *
 * chronik_strerror() returns static strings only, so it is thread-safe:
 * the project's own codes have fixed phrases, and a -errno is named by
 * glibc's strerrordesc_np(), which returns a constant string (unlike
 * strerror(), whose buffer may be shared between threads).
 */
#include <errno.h>
#include <string.h>

#include "errors.h"

const char *chronik_strerror(int err)
{
	const char *s;

	switch (err) {
	case 0:
		return "Success";
	case CHRONIK_ECORRUPT:
		return "Corrupt data (invalid frame or batch before the end of the log)";
	case CHRONIK_EVERSION:
		return "Unknown format version";
	case CHRONIK_ELOCKED:
		return "Data directory is locked by another process";
	case CHRONIK_EBADCRC:
		return "Record batch CRC mismatch";
	case CHRONIK_ECODEC:
		return "Compression codec not available";
	case CHRONIK_ENOTOPIC:
		return "Unknown topic or partition";
	case CHRONIK_ETOPICEXISTS:
		return "Topic already exists";
	case CHRONIK_EBADNAME:
		return "Invalid name (allowed: [A-Za-z0-9._-], 1-249 characters, not '.' or '..')";
	case CHRONIK_ERANGE:
		return "Offset out of range";
	case CHRONIK_ELIMIT:
		return "Limit on topics or partitions reached (settings max.topics, max.partitions)";
	case CHRONIK_ENOSTORE:
		return "Segment held in the object store, and no object store attached";
	default:
		break;
	}
	if (err < 0 && err > CHRONIK_ERR_BASE) {
		s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "Unknown error";
}

int chronik_errno(int err)
{
	switch (err) {
	case 0:
		return 0;
	case CHRONIK_ENOTOPIC:
		return ENOENT;
	case CHRONIK_EBADNAME:
		return EINVAL;
	case CHRONIK_ETOPICEXISTS:
		return EEXIST;
	case CHRONIK_ELOCKED:
		return EBUSY;
	case CHRONIK_ECORRUPT:
	case CHRONIK_EVERSION:
	case CHRONIK_ENOSTORE:
		return EIO;
	case CHRONIK_EBADCRC:
		return EBADMSG;
	case CHRONIK_ECODEC:
		return ENOTSUP;
	case CHRONIK_ERANGE:
		return ERANGE;
	case CHRONIK_ELIMIT:
		return EDQUOT;
	default:
		break;
	}
	if (err < 0 && err > CHRONIK_ERR_BASE)
		return -err;
	if (err > 0)
		return err;
	return EIO;
}
