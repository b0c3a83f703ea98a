/* commit.c - not yet written. */
typedef int chronik_placeholder_commit;
