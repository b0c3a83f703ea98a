/* log.c - not yet written. */
typedef int chronik_placeholder_log;
