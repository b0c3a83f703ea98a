/* settings.c - chronikd's settings: defaults, the JSON config file, the
 * flags (daemon.h).
 *
 * Every setting has a configuration name (fsync, wal.segment.bytes,
 * kafka.max.groups, ...). It is given in the config file, a JSON object
 * whose nested objects name their keys with dots ({"wal": {"segment.bytes":
 * 1}} is wal.segment.bytes; a string, integer, boolean or null value), or
 * on the command line as --set KEY=VALUE, --KEY=VALUE or --KEY VALUE. The
 * config file is applied first, then the flags in order: the last word
 * wins. kafka.* keys go to the listener's options, mount.options, foreground,
 * search.index and log.level are chronikd's own, everything else to
 * engine_options_set. search.index=false builds no full-text index (search
 * still answers, scanning the segments; for measuring the indexer).
 */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#ifndef CHRONIK_VERSION
#define CHRONIK_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: chronikd [options] DATA_DIR MOUNTPOINT\n"
		   "\n"
		   "Mount the chronik log store in DATA_DIR at MOUNTPOINT (and serve Kafka\n"
		   "clients on it).\n"
		   "\n"
		   "  -f, --foreground         stay in the foreground, log to stderr\n"
		   "  -d, --debug              debug logging and libfuse's request trace\n"
		   "  --fsync every|interval:MS|never\n"
		   "                           when appends are fsynced (default every)\n"
		   "  --config FILE.json       settings from a JSON object (flags win)\n"
		   "  --set KEY=VALUE          one setting; also --KEY=VALUE or --KEY VALUE\n"
		   "  -o OPT[,OPT...]          FUSE mount options (allow_other is opt-in;\n"
		   "                           noauto_unmount, nodefault_permissions turn\n"
		   "                           off the defaults)\n"
		   "  --kafka HOST:PORT        Kafka listener address (default 127.0.0.1:9092)\n"
		   "  --no-kafka               no Kafka listener\n"
		   "  -h, --help               this text\n"
		   "  -V, --version            the version\n"
		   "\n"
		   "Settings: fsync, wal.segment.bytes, wal.seal.ms, wal.unindexed.max.bytes,\n"
		   "default.partitions, max.topics, max.partitions, kafka,\n"
		   "kafka.max.request.bytes, kafka.auto.create.topics, kafka.fetch.sendfile,\n"
		   "kafka.connections.max.idle.ms, kafka.request.receive.timeout.ms,\n"
		   "kafka.max.groups, kafka.max.producer.states,\n"
		   "kafka.producer.state.evict.idle.ms, kafka.users.file,\n"
		   "kafka.tls.listen, kafka.tls.cert, kafka.tls.key,\n"
		   "kafka.allow.plaintext.remote, mount.options, foreground, search.index,\n"
		   "log.level (debug|info|warn|error),\n"
		   "remote.storage.url (s3://BUCKET[/PREFIX]: the cold tier),\n"
		   "remote.storage.endpoint (http(s)://HOST[:PORT], not AWS),\n"
		   "remote.storage.region, remote.storage.path.style,\n"
		   "remote.storage.credentials.file (else AWS_ACCESS_KEY_ID and\n"
		   "AWS_SECRET_ACCESS_KEY), remote.storage.timeout.ms, remote.cache.bytes,\n"
		   "remote.storage.multipart.bytes (objects this big or bigger go up\n"
		   "in parts), remote.storage.multipart.part.bytes,\n"
		   "remote.storage.sweep.ms, remote.storage.orphan.age.ms (the sweep of\n"
		   "objects no registry names).\n");
#ifndef CHRONIK_HAVE_KAFKA
	fprintf(f, "\nThis chronikd is built without the Kafka listener.\n");
#endif
}

void daemon_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "chronikd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int mount_opts_add(struct settings *s, const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "auto_unmount")) {
			s->auto_unmount = true;
		} else if (!strcmp(tok, "noauto_unmount")) {
			s->auto_unmount = false;
		} else if (!strcmp(tok, "default_permissions")) {
			s->default_permissions = true;
		} else if (!strcmp(tok, "nodefault_permissions")) {
			s->default_permissions = false;
		} else {
			size_t have = s->mount_opts ? strlen(s->mount_opts) : 0;
			char *n = realloc(s->mount_opts, have + strlen(tok) + 2);
			if (!n) {
				free(copy);
				return -ENOMEM;
			}
			if (have)
				n[have++] = ',';
			strcpy(n + have, tok);
			s->mount_opts = n;
		}
	}
	free(copy);
	return 0;
}

/* One setting by its configuration name. 0, or -1 after saying why. */
static int setting_set(struct settings *s, const char *key, const char *value)
{
	int err;

	if (!strcmp(key, "kafka")) {
		bool on;
		if (!*value || !strcmp(value, "none") || (parse_bool(value, &on) == 0 && !on)) {
			s->kafka = false;
			return 0;
		}
#ifdef CHRONIK_HAVE_KAFKA
		if (kafka_options_parse_addr(&s->ko, value) < 0) {
			daemon_fail("kafka: bad address '%s' (want HOST:PORT)", value);
			return -1;
		}
		free(s->kafka_addr);
		s->kafka_addr = strdup(value);
		s->kafka = true;
		return s->kafka_addr ? 0 : -1;
#else
		daemon_fail(
			"kafka: this chronikd is built without the Kafka listener (not built yet)");
		return -1;
#endif
	}
	if (!strncmp(key, "kafka.", 6)) {
#ifdef CHRONIK_HAVE_KAFKA
		if (!strcmp(key, "kafka.max.request.bytes")) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(value, &end, 10);
			if (errno || end == value || *end || v < 1024) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			s->ko.max_request_bytes = (size_t)v;
			return 0;
		}
		/* Security (kafka/security.c): file paths and the TLS address. */
		static const struct {
			const char *key;
			size_t off;
		} paths[] = {
			{ "kafka.users.file", offsetof(struct settings, kafka_users_file) },
			{ "kafka.tls.listen", offsetof(struct settings, kafka_tls_listen) },
			{ "kafka.tls.cert", offsetof(struct settings, kafka_tls_cert) },
			{ "kafka.tls.key", offsetof(struct settings, kafka_tls_key) },
		};
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			if (strcmp(key, paths[i].key) != 0)
				continue;
			char **slot = (char **)((char *)s + paths[i].off);
			if (!*value) {
				daemon_fail("%s: empty value", key);
				return -1;
			}
			free(*slot);
			*slot = strdup(value);
			return *slot ? 0 : -1;
		}
		if (!strcmp(key, "kafka.allow.plaintext.remote")) {
			if (parse_bool(value, &s->ko.allow_plaintext_remote) < 0) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			return 0;
		}
		if (!strcmp(key, "kafka.fetch.sendfile")) {
			if (parse_bool(value, &s->ko.fetch_sendfile) < 0) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			return 0;
		}
		if (!strcmp(key, "kafka.auto.create.topics")) {
			if (parse_bool(value, &s->ko.auto_create_topics) < 0) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			return 0;
		}
		/* The listener's limits, each a non-negative int32. */
		static const struct {
			const char *key;
			size_t off;
		} limits[] = {
			{ "kafka.connections.max.idle.ms",
			  offsetof(struct kafka_options, connections_max_idle_ms) },
			{ "kafka.request.receive.timeout.ms",
			  offsetof(struct kafka_options, request_receive_timeout_ms) },
			{ "kafka.max.connections",
			  offsetof(struct kafka_options, max_connections) },
			{ "kafka.max.groups", offsetof(struct kafka_options, max_groups) },
			{ "kafka.max.producer.states",
			  offsetof(struct kafka_options, max_producer_states) },
			{ "kafka.producer.state.evict.idle.ms",
			  offsetof(struct kafka_options, producer_state_evict_idle_ms) },
		};
		for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
			if (strcmp(key, limits[i].key) != 0)
				continue;
			char *end;
			errno = 0;
			long v = strtol(value, &end, 10);
			if (errno || end == value || *end || v < 0 || v > INT32_MAX) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			*(int32_t *)((char *)&s->ko + limits[i].off) = (int32_t)v;
			return 0;
		}
		daemon_fail("unknown setting '%s'", key);
#else
		daemon_fail("%s: this chronikd is built without the Kafka listener (not built yet)",
			    key);
#endif
		return -1;
	}
	if (!strncmp(key, "remote.", 7)) {
		static const struct {
			const char *key;
			size_t off;
		} strs[] = {
			{ "remote.storage.url", offsetof(struct settings, remote_url) },
			{ "remote.storage.endpoint", offsetof(struct settings, remote_endpoint) },
			{ "remote.storage.region", offsetof(struct settings, remote_region) },
			{ "remote.storage.credentials.file",
			  offsetof(struct settings, remote_credentials_file) },
		};
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
			if (strcmp(key, strs[i].key) != 0)
				continue;
			char **slot = (char **)((char *)s + strs[i].off);
			free(*slot);
			*slot = *value ? strdup(value) : NULL;
			return 0;
		}
		if (!strcmp(key, "remote.storage.path.style")) {
			if (parse_bool(value, &s->remote_path_style) < 0) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			return 0;
		}
		/* Numbers, each in [1, max]; the sizes' slots are uint64_t,
		 * remote.storage.timeout.ms's uint32_t. S3 wants parts of 5 MiB
		 * or more (but the last) and 5 GiB at most. */
		static const struct {
			const char *key;
			size_t off;
			unsigned long long max;
			bool u32;
		} nums[] = {
			{ "remote.cache.bytes", offsetof(struct settings, remote_cache_bytes),
			  ULLONG_MAX, false },
			{ "remote.storage.timeout.ms", offsetof(struct settings, remote_timeout_ms),
			  3600000, true },
			{ "remote.storage.multipart.bytes",
			  offsetof(struct settings, remote_multipart_bytes), ULLONG_MAX, false },
			{ "remote.storage.multipart.part.bytes",
			  offsetof(struct settings, remote_part_bytes), 5ull << 30, false },
			{ "remote.storage.sweep.ms", offsetof(struct settings, remote_sweep_ms),
			  86400000, false },
			{ "remote.storage.orphan.age.ms",
			  offsetof(struct settings, remote_orphan_age_ms), ULLONG_MAX, false },
		};
		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
			if (strcmp(key, nums[i].key) != 0)
				continue;
			char *end;
			errno = 0;
			unsigned long long v = strtoull(value, &end, 10);
			if (errno || end == value || *end || v < 1 || v > nums[i].max) {
				daemon_fail("%s: bad value '%s'", key, value);
				return -1;
			}
			if (nums[i].u32)
				*(uint32_t *)((char *)s + nums[i].off) = (uint32_t)v;
			else
				*(uint64_t *)((char *)s + nums[i].off) = v;
			return 0;
		}
		daemon_fail("unknown setting '%s'", key);
		return -1;
	}
	if (!strcmp(key, "mount.options"))
		return mount_opts_add(s, value) < 0 ? -1 : 0;
	if (!strcmp(key, "search.index")) {
		if (parse_bool(value, &s->search_index) < 0) {
			daemon_fail("search.index: bad value '%s'", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "foreground")) {
		if (parse_bool(value, &s->foreground) < 0) {
			daemon_fail("foreground: bad value '%s'", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "log.level")) {
		static const char *const names[] = { "debug", "info", "warn", "error" };
		for (int i = 0; i < 4; i++) {
			if (!strcmp(value, names[i])) {
				s->level = (enum log_level)i;
				return 0;
			}
		}
		daemon_fail("log.level: bad value '%s' (debug, info, warn or error)", value);
		return -1;
	}
	err = engine_options_set(&s->eo, key, value);
	if (err == -ENOENT) {
		daemon_fail("unknown setting '%s'", key);
		return -1;
	}
	if (err < 0) {
		daemon_fail("%s: bad value '%s'", key, value);
		return -1;
	}
	return 0;
}

/* Apply the members of a JSON object; nested objects name their keys with
 * dots ({"wal": {"segment.bytes": 1}} is "wal.segment.bytes"). */
static int config_apply_object(struct settings *s, json_object *obj, const char *prefix,
			       const char *file)
{
	json_object_object_foreach(obj, k, v)
	{
		char key[256], num[32];
		const char *value;

		if (snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k) >=
		    (int)sizeof(key)) {
			daemon_fail("%s: key too long", file);
			return -1;
		}
		switch (json_object_get_type(v)) {
		case json_type_object:
			if (config_apply_object(s, v, key, file) < 0)
				return -1;
			continue;
		case json_type_string:
			value = json_object_get_string(v);
			break;
		case json_type_int:
			snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
			value = num;
			break;
		case json_type_boolean:
			value = json_object_get_boolean(v) ? "true" : "false";
			break;
		case json_type_null:
			value = "";
			break;
		default:
			daemon_fail("%s: %s: a string, integer, boolean or null is expected", file,
				    key);
			return -1;
		}
		if (setting_set(s, key, value) < 0) {
			daemon_fail("(in %s)", file);
			return -1;
		}
	}
	return 0;
}

static int config_load(struct settings *s, const char *file)
{
	json_object *obj = json_object_from_file(file);
	int rc;

	if (!obj) {
		daemon_fail("%s: %s", file, json_util_get_last_err());
		return -1;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		daemon_fail("%s: a JSON object is expected", file);
		json_object_put(obj);
		return -1;
	}
	rc = config_apply_object(s, obj, "", file);
	json_object_put(obj);
	return rc;
}

int settings_parse_args(struct settings *s, int argc, char **argv)
{
	const char *positional[2];
	int npos = 0;
	bool only_positional = false;

	/* The config file first, whatever its place: flags override it. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				daemon_fail("--config needs a file");
				return -1;
			}
			if (config_load(s, argv[++i]) < 0)
				return -1;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			if (config_load(s, argv[i] + 9) < 0)
				return -1;
		}
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq;

		if (only_positional || a[0] != '-' || !a[1]) {
			if (npos == 2) {
				daemon_fail("too many arguments ('%s')", a);
				return -1;
			}
			positional[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_positional = true;
		} else if (!strcmp(a, "-f") || !strcmp(a, "--foreground")) {
			s->foreground = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			s->fuse_debug = true;
			s->level = LOG_LVL_DEBUG;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("chronikd %s\n", CHRONIK_VERSION);
			exit(0);
		} else if (!strcmp(a, "--config")) {
			i++; /* done above */
		} else if (!strncmp(a, "--config=", 9)) {
			/* done above */
		} else if (!strcmp(a, "-o") || !strncmp(a, "-o", 2)) {
			const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v) {
				daemon_fail("-o needs options");
				return -1;
			}
			if (mount_opts_add(s, v) < 0)
				return -1;
		} else if (!strcmp(a, "--no-kafka")) {
			s->kafka = false;
		} else if (!strcmp(a, "--set")) {
			if (i + 1 >= argc || !(eq = strchr(argv[i + 1], '='))) {
				daemon_fail("--set needs KEY=VALUE");
				return -1;
			}
			char *kv = strdup(argv[++i]);
			if (!kv)
				return -1;
			kv[eq - argv[i]] = '\0';
			int rc = setting_set(s, kv, kv + (eq - argv[i]) + 1);
			free(kv);
			if (rc < 0)
				return -1;
		} else if (!strncmp(a, "--", 2)) {
			/* --KEY=VALUE or --KEY VALUE for any setting (--fsync, --kafka) */
			char key[128];
			const char *value;
			eq = strchr(a, '=');
			size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			if (klen == 0 || klen >= sizeof(key)) {
				daemon_fail("unknown option '%s'", a);
				return -1;
			}
			memcpy(key, a + 2, klen);
			key[klen] = '\0';
			if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				daemon_fail("%s needs a value", a);
				return -1;
			}
			if (setting_set(s, key, value) < 0)
				return -1;
		} else {
			daemon_fail("unknown option '%s' (see --help)", a);
			return -1;
		}
	}
	if (npos != 2) {
		usage(stderr);
		return -1;
	}
	s->data_dir = positional[0];
	s->mountpoint = positional[1];
	return 0;
}

void settings_init(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	engine_options_init(&s->eo);
	s->level = LOG_LVL_INFO;
	s->auto_unmount = true;
	s->default_permissions = true;
	s->search_index = true;
	s->remote_path_style = true;
#ifdef CHRONIK_HAVE_KAFKA
	kafka_options_init(&s->ko);
	s->kafka = true;
	s->kafka_addr = strdup("127.0.0.1:9092");
#endif
}

void settings_fini(struct settings *s)
{
	free(s->mount_opts);
	free(s->kafka_addr);
	s->mount_opts = s->kafka_addr = NULL;
	free(s->kafka_users_file);
	free(s->kafka_tls_listen);
	free(s->kafka_tls_cert);
	free(s->kafka_tls_key);
	s->kafka_users_file = s->kafka_tls_listen = s->kafka_tls_cert = s->kafka_tls_key = NULL;
	free(s->remote_url);
	free(s->remote_endpoint);
	free(s->remote_region);
	free(s->remote_credentials_file);
	s->remote_url = s->remote_endpoint = s->remote_region = s->remote_credentials_file = NULL;
}
