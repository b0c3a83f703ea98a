/* frame.c - not yet written. */
typedef int chronik_placeholder_frame;
