/* read.c - not yet written. */
typedef int chronik_placeholder_read;
