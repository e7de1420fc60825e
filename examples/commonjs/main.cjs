// humphrey-ws is an ES module; CommonJS code loads it with import(), which works in require()
// land too (Node 20 cannot require() an ES module).
//
//   node examples/commonjs/main.cjs URL
async function main(url) {
  const { connect } = await import('humphrey-ws');
  const stream = await connect(url);
  await stream.send('hello from CommonJS');
  console.log((await stream.recv()).text());
  await stream.close();
}

main(process.argv[2] ?? 'ws://127.0.0.1:9001').catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
