/* batch.c - not yet written. */
typedef int chronik_placeholder_batch;
