/* crc32c.c - not yet written. */
typedef int chronik_placeholder_crc32c;
