/* engine.c - not yet written. */
typedef int chronik_placeholder_engine;
