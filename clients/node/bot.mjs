// A vk-io 4 bot, as its users write one, against Latchkey: the only
// changes are apiBaseUrl and an http agent (vk-io speaks HTTPS by
// default). It answers every message_new with "echo: <text>".
//
//   node bot.mjs BASE_URL COMMUNITY_TOKEN
//
// It prints "ready" once polling has started, and "got <text>" for each
// message it answers.
import http from 'node:http';
import { VK } from 'vk-io';

const [base, token] = process.argv.slice(2);
const vk = new VK({
  token,
  apiBaseUrl: base + '/method',
  agent: new http.Agent({ keepAlive: true }),
});

vk.updates.on('message_new', async (context) => {
  console.log('got ' + context.text);
  await context.send('echo: ' + context.text);
});

await vk.updates.start();
console.log('ready');
