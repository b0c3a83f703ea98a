// kafkajs_test.js - kafkajs against the listener: topic creation, keyed
// produce with acks=-1, a consumer group round trip, and a second run of the
// group resuming at the committed offsets; then the admin APIs on that
// group and topic (listGroups, describeGroups, fetchOffsets, createPartitions,
// describeConfigs, alterConfigs, deleteGroups).
// Usage: node kafkajs_test.js BROKER
// Prints "RESULT <0|1> <description>" lines; kafkajs.sh turns them into TAP.
'use strict';
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const broker = process.argv[2];
const kafka = new Kafka({ clientId: 'chronik-js', brokers: [broker], logLevel: logLevel.NOTHING,
	retry: { retries: 5 } });

function result(cond, what) {
	console.log(`RESULT ${cond ? 0 : 1} ${what}`);
}

async function consumeN(groupId, n, timeoutMs) {
	const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
	const got = [];
	await consumer.connect();
	await consumer.subscribe({ topic: 'js', fromBeginning: true });
	let done;
	const finished = new Promise((resolve) => { done = resolve; });
	await consumer.run({
		eachMessage: async ({ partition, message }) => {
			got.push({ partition, offset: Number(message.offset),
				key: message.key && message.key.toString(), value: message.value.toString() });
			if (got.length >= n)
				done();
		},
	});
	const timer = setTimeout(done, timeoutMs);
	await finished;
	clearTimeout(timer);
	// Let a few more arrive if there are any (there should not be).
	await new Promise((r) => setTimeout(r, 1000));
	await consumer.disconnect(); // commits the resolved offsets
	return got;
}

async function main() {
	const admin = kafka.admin();
	await admin.connect();
	const created = await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2 }] });
	result(created === true, 'admin.createTopics creates js with 2 partitions');
	const meta = await admin.fetchTopicMetadata({ topics: ['js'] });
	result(meta.topics[0].partitions.length === 2, 'fetchTopicMetadata sees 2 partitions');
	await admin.disconnect();

	const producer = kafka.producer();
	await producer.connect();
	const n = 500;
	const messages = [];
	for (let i = 0; i < n; i++)
		messages.push({ key: `k${i % 13}`, value: `v${i}` });
	const res = await producer.send({ topic: 'js', acks: -1, messages });
	result(res.length > 0 && res.every((r) => r.errorCode === 0), `produced ${n} keyed records`);

	const got = await consumeN('jsg', n, 30000);
	const values = new Set(got.map((m) => m.value));
	result(got.length === n && values.size === n, `the group consumed ${got.length} records`);
	const byPart = {};
	let keysOk = true;
	const keyPart = {};
	for (const m of got) {
		(byPart[m.partition] = byPart[m.partition] || []).push(m.offset);
		if (keyPart[m.key] === undefined)
			keyPart[m.key] = m.partition;
		keysOk = keysOk && keyPart[m.key] === m.partition && m.value.startsWith('v');
	}
	let dense = true;
	for (const p of Object.keys(byPart)) {
		const offs = byPart[p];
		dense = dense && offs.every((o, i) => o === i);
	}
	result(dense && keysOk, 'offsets are dense and in order per partition; keys stay in one partition');

	await producer.send({ topic: 'js', acks: -1,
		messages: Array.from({ length: 20 }, (_, i) => ({ value: `after-${i}` })) });
	await producer.disconnect();
	const again = await consumeN('jsg', 20, 30000);
	result(again.length === 20 && again.every((m) => m.value.startsWith('after-')),
		`a second run of the group reads only the ${again.length} new records`);
	await adminChecks();
}

async function adminChecks() {
	const admin = kafka.admin();
	await admin.connect();
	let lg = await admin.listGroups();
	const jsg = lg.groups.find((g) => g.groupId === 'jsg');
	result(jsg && jsg.protocolType === 'consumer', `listGroups lists jsg: ${JSON.stringify(lg.groups)}`);
	const dg = await admin.describeGroups(['jsg', 'ghost']);
	const st = dg.groups.map((g) => `${g.groupId}:${g.state}:${g.members.length}`).join(',');
	result(st === 'jsg:Empty:0,ghost:Dead:0', `describeGroups: ${st}`);
	const fo = await admin.fetchOffsets({ groupId: 'jsg', topics: ['js'] });
	const sum = fo[0].partitions.reduce((a, p) => a + Number(p.offset), 0);
	result(sum === 520, `fetchOffsets: the committed offsets add up to ${sum} of 520 records`);

	const p0of = async () => (await admin.fetchTopicOffsets('js')).find((p) => p.partition === 0);
	const was = await p0of();
	await admin.deleteTopicRecords({ topic: 'js', partitions: [{ partition: 0, offset: '100' }] });
	const now = await p0of();
	result(was.low === '0' && Number(was.high) > 100 && now.low === '100' && now.high === was.high,
		`deleteTopicRecords: js/0 ran ${was.low}-${was.high}, now ${now.low}-${now.high}`);

	await admin.createPartitions({ topicPartitions: [{ topic: 'js', count: 3 }] });
	const meta = await admin.fetchTopicMetadata({ topics: ['js'] });
	result(meta.topics[0].partitions.length === 3, `createPartitions: js has ${meta.topics[0].partitions.length} partitions`);

	const describe = async () => {
		const d = await admin.describeConfigs({ includeSynonyms: false,
			resources: [{ type: ConfigResourceTypes.TOPIC, name: 'js', configNames: ['retention.ms'] }] });
		const e = d.resources[0].configEntries;
		return e.length === 1 ? `${e[0].configName}=${e[0].configValue}:${e[0].isDefault}` : JSON.stringify(e);
	};
	const before = await describe();
	await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC,
		name: 'js', configEntries: [{ name: 'retention.ms', value: '5000' }] }] });
	const after = await describe();
	result(before === 'retention.ms=-1:true' && after === 'retention.ms=5000:false',
		`describeConfigs / alterConfigs: ${before} then ${after}`);

	const del = await admin.deleteGroups(['jsg']);
	lg = await admin.listGroups();
	result(del.length === 1 && del[0].errorCode === 0 && !lg.groups.some((g) => g.groupId === 'jsg'),
		'deleteGroups deletes jsg: listGroups no longer has it');
	let code = null;
	try {
		await admin.deleteGroups(['ghost']);
	} catch (e) {
		code = e.groups && e.groups[0] && e.groups[0].errorCode;
	}
	result(code === 69, `deleteGroups of an unknown group fails with ${code} (69 GROUP_ID_NOT_FOUND)`);
	await admin.disconnect();
}

main().then(() => process.exit(0)).catch((e) => {
	result(false, `kafkajs failed: ${e && e.message}`);
	process.exit(1);
});
