// kafkajs_security.js - kafkajs with SASL/PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 (SCRAM-SHA-512 over TLS), a wrong password, and a
// read-only user producing.
// Usage: node kafkajs_security.js BROKER TLS_BROKER CA_PEM
// Prints "RESULT <0|1> <description>" lines; kafkajs_security.sh makes TAP.
'use strict';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [broker, tlsBroker, caFile] = process.argv.slice(2);
const ca = [fs.readFileSync(caFile)];

function result(cond, what) {
	console.log(`RESULT ${cond ? 0 : 1} ${what}`);
}

function client(mechanism, username, password, tls) {
	return new Kafka({
		clientId: 'chronik-js-sec', brokers: [tls ? tlsBroker : broker],
		logLevel: logLevel.NOTHING, retry: { retries: 1 },
		ssl: tls ? { ca } : false,
		sasl: { mechanism, username, password },
	});
}

async function roundTrip(mechanism, tls) {
	const kafka = client(mechanism, 'alice', 'alice-pw', tls);
	const topic = `js-${mechanism}${tls ? '-tls' : ''}`;
	const producer = kafka.producer();
	await producer.connect();
	const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
	await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
	await producer.disconnect();
	const consumer = kafka.consumer({ groupId: `g-${topic}`, sessionTimeout: 10000,
		heartbeatInterval: 500 });
	await consumer.connect();
	await consumer.subscribe({ topic, fromBeginning: true });
	const got = [];
	let done;
	const finished = new Promise((resolve) => { done = resolve; });
	await consumer.run({ eachMessage: async ({ message }) => {
		got.push(message.value.toString());
		if (got.length >= values.length)
			done();
	} });
	const timer = setTimeout(done, 30000);
	await finished;
	clearTimeout(timer);
	await consumer.disconnect();
	return JSON.stringify(got) === JSON.stringify(values);
}

async function main() {
	for (const [mech, tls] of [['plain', false], ['scram-sha-256', false], ['scram-sha-512', true]]) {
		let good = false;
		try {
			good = await roundTrip(mech, tls);
		} catch (e) {
			console.error(`${mech}: ${e}`);
		}
		result(good, `kafkajs SASL/${mech}${tls ? ' over TLS' : ''}: 50 records produced and consumed in a group`);
	}

	let err = null;
	try {
		const admin = client('scram-sha-256', 'alice', 'wrong', false).admin();
		await admin.connect();
		await admin.disconnect();
	} catch (e) {
		err = e;
	}
	result(err && /SASL_AUTHENTICATION_FAILED|Authentication failed/i.test(`${err.type} ${err.message}`),
		'kafkajs: a wrong password fails with SASL_AUTHENTICATION_FAILED');
	if (err)
		console.error(`wrong password: ${err.type} ${err.message}`);

	err = null;
	const producer = client('scram-sha-512', 'reader', 'reader-pw', false).producer();
	try {
		await producer.connect();
		await producer.send({ topic: 'js-plain', acks: -1, messages: [{ value: 'x' }] });
	} catch (e) {
		err = e;
	}
	await producer.disconnect().catch(() => {});
	const cause = err && (err.originalError || err);
	result(cause && cause.type === 'TOPIC_AUTHORIZATION_FAILED',
		'kafkajs: a read-only user producing gets TOPIC_AUTHORIZATION_FAILED');
	if (err)
		console.error(`read-only produce: ${cause.type} ${cause.message}`);
}

main().then(() => process.exit(0), (e) => {
	console.error(e);
	process.exit(1);
});
