// kafkajs_test.js - kafkajs against the listener: topic creation, keyed
// produce with acks=-1, a consumer group round trip, and a second run of the
// group resuming at the committed offsets.
// Usage: node kafkajs_test.js BROKER
// Prints "RESULT <0|1> <description>" lines; kafkajs.sh turns them into TAP.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

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
}

main().then(() => process.exit(0)).catch((e) => {
	result(false, `kafkajs failed: ${e && e.message}`);
	process.exit(1);
});
