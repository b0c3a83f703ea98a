/* cmd_topic.c - chronik topic create | list | delete | alter. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

/* Add "--config KEY=VALUE" to the config object; values are strings, as
 * Kafka's CreateTopics carries them. The pair must pass the engine's
 * check (engine_topic_config_check: a known key, a value in its range),
 * else a usage error (exit 2) before anything is opened or changed; for
 * `topic alter` an empty VALUE (remove KEY) is not checked. */
static int config_add(struct json_object *cfg, const char *kv, bool alter)
{
	const char *eq = strchr(kv, '=');
	struct json_object *v;
	const char *why;
	char *key;
	int rc = 0;

	if (!eq || eq == kv)
		return cli_usage_error("--config %s: expected KEY=VALUE", kv);
	key = strndup(kv, (size_t)(eq - kv));
	if (!key)
		return cli_fail("--config", -ENOMEM);
	if ((!alter || eq[1]) && (why = engine_topic_config_check(key, eq + 1)) != NULL) {
		rc = cli_usage_error("--config %s: %s", kv, why);
		free(key);
		return rc;
	}
	v = json_object_new_string(eq + 1);
	if (!v || json_object_object_add(cfg, key, v)) {
		json_object_put(v);
		rc = cli_fail("--config", -ENOMEM);
	}
	free(key);
	return rc;
}

static int topic_create(struct cli *c, int argc, char **argv)
{
	struct json_object *cfg = json_object_new_object();
	const char *name = NULL, *v;
	int64_t partitions = 0;
	int ret = CLI_EXIT_OK, rc;
	char what[320];

	if (!cfg)
		return cli_fail("topic create", -ENOMEM);
	for (int i = 0; i < argc;) {
		rc = cli_opt_value(argc, argv, &i, "--partitions", &v);
		if (rc < 0)
			goto usage;
		if (rc > 0) {
			if (cli_parse_i64(v, &partitions) < 0 || partitions < 1 ||
			    partitions > INT32_MAX) {
				ret = cli_usage_error("--partitions %s: expected a positive number",
						      v);
				goto put_cfg;
			}
			continue;
		}
		rc = cli_opt_value(argc, argv, &i, "--config", &v);
		if (rc < 0)
			goto usage;
		if (rc > 0) {
			ret = config_add(cfg, v, false);
			if (ret)
				goto put_cfg;
			continue;
		}
		ret = cli_operand(c, argc, argv, &i, "topic create", true,
				  "one topic name expected", &name);
		if (ret)
			goto put_cfg;
	}
	if (!name) {
		ret = cli_usage_error("topic create: missing NAME");
		goto put_cfg;
	}
	snprintf(what, sizeof(what), "topic '%.250s'", name);
	if (!engine_topic_name_valid(name)) {
		ret = cli_fail(what, CHRONIK_EBADNAME);
		goto put_cfg;
	}
	ret = cli_engine_open(c, false);
	if (ret)
		goto put_cfg;
	rc = engine_topic_create(c->engine, name, (int32_t)partitions,
				 json_object_object_length(cfg) ?
					 json_object_to_json_string_ext(cfg,
									JSON_C_TO_STRING_PLAIN) :
					 NULL);
	if (rc < 0)
		ret = cli_fail(what, rc);
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
put_cfg:
	json_object_put(cfg);
	return ret;
usage:
	json_object_put(cfg);
	return CLI_EXIT_USAGE;
}

static int topic_list(struct cli *c, int argc, char **argv)
{
	char **names = NULL;
	size_t count = 0;
	int ret, rc;

	ret = cli_no_operand(c, argc, argv, "topic list");
	if (ret)
		return ret;
	ret = cli_engine_open(c, true);
	if (ret)
		return ret;
	rc = engine_topic_list(c->engine, &names, &count);
	if (rc < 0) {
		ret = cli_fail("topic list", rc);
	} else {
		for (size_t k = 0; k < count; k++)
			printf("%s\n", names[k]);
		engine_strv_free(names, count);
		if (fflush(stdout))
			ret = cli_fail("stdout", -errno);
	}
	rc = cli_engine_close(c);
	return ret ? ret : rc;
}

static int topic_delete(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	char what[320];
	int ret, rc;

	for (int i = 0; i < argc;) {
		ret = cli_operand(c, argc, argv, &i, "topic delete", false,
				  "one topic name expected", &name);
		if (ret)
			return ret;
	}
	if (!name)
		return cli_usage_error("topic delete: missing NAME");
	snprintf(what, sizeof(what), "topic '%.250s'", name);
	ret = cli_engine_open(c, false);
	if (ret)
		return ret;
	rc = engine_topic_delete(c->engine, name);
	if (rc < 0)
		ret = cli_fail(what, rc);
	rc = cli_engine_close(c);
	return ret ? ret : rc;
}

/* topic alter NAME --config KEY=VALUE...: each KEY set to VALUE in the
 * topic's config (an empty VALUE removes KEY), the other keys kept. The
 * engine (retention, the indexer) reads the config at every pass, so it
 * takes effect at once; a live chronikd holds the lock, and there
 * config.json or Kafka's IncrementalAlterConfigs change it. */
static int topic_alter(struct cli *c, int argc, char **argv)
{
	struct json_object *set = json_object_new_object(), *cfg = NULL;
	const char *name = NULL, *v;
	char *old = NULL, what[320];
	int ret = CLI_EXIT_OK, rc;

	if (!set)
		return cli_fail("topic alter", -ENOMEM);
	for (int i = 0; i < argc;) {
		rc = cli_opt_value(argc, argv, &i, "--config", &v);
		if (rc < 0) {
			ret = CLI_EXIT_USAGE;
			goto out;
		}
		if (rc > 0) {
			ret = config_add(set, v, true);
			if (ret)
				goto out;
			continue;
		}
		ret = cli_operand(c, argc, argv, &i, "topic alter", true, "one topic name expected",
				  &name);
		if (ret)
			goto out;
	}
	if (!name || !json_object_object_length(set)) {
		ret = cli_usage_error("topic alter: expected NAME --config KEY=VALUE...");
		goto out;
	}
	snprintf(what, sizeof(what), "topic '%.250s'", name);
	ret = cli_engine_open(c, false);
	if (ret)
		goto out;
	rc = engine_topic_config_get(c->engine, name, &old);
	if (rc == 0) {
		cfg = json_tokener_parse(old);
		if (!cfg || !json_object_is_type(cfg, json_type_object)) {
			json_object_put(cfg);
			cfg = json_object_new_object();
		}
		json_object_object_foreach(set, key, val)
		{
			if (!*json_object_get_string(val))
				json_object_object_del(cfg, key);
			else
				json_object_object_add(cfg, key, json_object_get(val));
		}
		rc = engine_topic_config_set(
			c->engine, name,
			json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
	}
	if (rc < 0)
		ret = cli_fail(what, rc);
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
out:
	free(old);
	json_object_put(cfg);
	json_object_put(set);
	return ret;
}

int cmd_topic(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_usage_error("topic: expected create, list, delete or alter");
	if (!strcmp(argv[0], "create"))
		return topic_create(c, argc - 1, argv + 1);
	if (!strcmp(argv[0], "list"))
		return topic_list(c, argc - 1, argv + 1);
	if (!strcmp(argv[0], "delete"))
		return topic_delete(c, argc - 1, argv + 1);
	if (!strcmp(argv[0], "alter"))
		return topic_alter(c, argc - 1, argv + 1);
	return cli_usage_error("topic: unknown subcommand '%s'", argv[0]);
}
