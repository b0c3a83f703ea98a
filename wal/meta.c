/* meta.c - not yet written. */
typedef int chronik_placeholder_meta;
