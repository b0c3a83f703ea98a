// @platformatic/kafka against the listener: a client that negotiates the
// highest common version of each API, so against chronik it speaks the
// flexible versions (compact encodings, tagged fields). Produces, consumes
// in a group, commits, deletes records; records which version of each API it really sent
// (its diagnostics channel) and prints "RESULT 0|1 what" lines for the
// TAP wrapper (platformatic.sh).
import { tracingChannel } from 'node:diagnostics_channel'
import { Producer, Consumer, Admin, stringSerializers, stringDeserializers } from '@platformatic/kafka'

// Node 20 lacks Promise.withResolvers (Node 22 has it); the client uses it.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((a, b) => { resolve = a; reject = b })
  return { promise, resolve, reject }
}

const broker = process.argv[2]
const used = new Map()
tracingChannel('plt:kafka:connections:api').subscribe({
  start (m) { used.set(m.apiKey, Math.max(used.get(m.apiKey) ?? -1, m.apiVersion)) },
  end () {}, asyncStart () {}, asyncEnd () {}, error () {}
})
const result = (cond, what) => console.log(`RESULT ${cond ? 0 : 1} ${what}`)

const admin = new Admin({ clientId: 'a', bootstrapBrokers: [broker] })
await admin.createTopics({ topics: ['flex'], partitions: 2, replicas: 1 })
const md = await admin.metadata({ topics: ['flex'] })
const t = md.topics.get('flex')
result(t && t.partitionsCount === 2 && t.id && !/^0+$/.test(t.id.replace(/-/g, '')),
  `createTopics + metadata: 2 partitions and a topic id (${t && t.id})`)
await admin.close()

const producer = new Producer({ clientId: 'p', bootstrapBrokers: [broker], serializers: stringSerializers })
const values = ['one', 'two', 'three']
const sent = await producer.send({ messages: values.map(v => ({ topic: 'flex', partition: 0, key: 'k', value: v })) })
result(sent.offsets && sent.offsets.length === 1 && Number(sent.offsets[0].offset) === 0,
  'produce: batch stored at offset 0')
await producer.close()

const consumer = new Consumer({ groupId: 'flexg', clientId: 'c', bootstrapBrokers: [broker], deserializers: stringDeserializers, autocommit: false })
const stream = await consumer.consume({ topics: ['flex'], mode: 'earliest' })
const got = []
for await (const m of stream) {
  got.push(m.value)
  if (got.length === values.length) {
    await m.commit()
    break
  }
}
await stream.close()
const committed = await consumer.listCommittedOffsets({ topics: [{ topic: 'flex', partitions: [0] }] })
const c0 = committed.get('flex')
result(JSON.stringify(got) === JSON.stringify(values), `consume in a group: ${JSON.stringify(got)}`)
result(c0 && Number(c0[0]) === values.length, `commit + fetch offsets: ${c0 && c0[0]}`)
await consumer.close()

// DeleteRecords (its v2 is flexible) below offset 2 of flex/0.
const admin2 = new Admin({ clientId: 'a2', bootstrapBrokers: [broker] })
const deleted = await admin2.deleteRecords({ topics: [{ name: 'flex', partitions: [{ partition: 0, offset: 2n }] }] })
const d0 = deleted.find(x => x.name === 'flex')
const low = d0 && d0.partitions.find(x => x.partition === 0)
result(low && low.lowWatermark === 2n, `deleteRecords: flex/0 low watermark ${low && low.lowWatermark}`)
await admin2.close()

// The versions really used: each must be a flexible one (Fetch: by topic id).
const flexibleFrom = { 0: 9, 1: 13, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4, 18: 3, 19: 5, 21: 2 }
for (const [key, first] of Object.entries(flexibleFrom)) {
  const v = used.get(Number(key))
  if (v === undefined) continue
  result(v >= first, `api ${key} sent at v${v} (flexible from v${first})`)
}
for (const key of [0, 1, 3, 8, 11, 14, 21]) {
  result(used.has(key), `api ${key} was used`)
}
console.log('# versions used: ' + JSON.stringify([...used.entries()].sort((a, b) => a[0] - b[0])))
