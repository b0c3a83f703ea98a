// s3rver.js DIR [PORT]: an S3-protocol server on 127.0.0.1 for the cold
// tests, bucket "chronik", objects under DIR. Prints "PORT <n>" once it
// listens; runs until killed. s3rver checks the access key (S3RVER) of a
// SigV4 request but not its signature (lib/middleware/authentication.js:
// "Signature version 4 calculation is unimplemented").
const S3rver = require('s3rver');
const dir = process.argv[2];
const port = parseInt(process.argv[3] || '0', 10);
const server = new S3rver({
  address: '127.0.0.1',
  port,
  silent: true,
  directory: dir,
  configureBuckets: [{ name: 'chronik' }],
});
server.run().then((addr) => {
  const p = Array.isArray(addr) ? addr[1] : addr.port;
  process.stdout.write(`PORT ${p}\n`);
}, (err) => {
  process.stderr.write(`s3rver: ${err}\n`);
  process.exit(1);
});
