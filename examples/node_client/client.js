#!/usr/bin/env node
// Reads goka tables over gRPC (viewsvc.v1.TableService) from Node.js.
//
//   node client.js --target HOST:PORT [options] get TABLE KEY
//   node client.js --target HOST:PORT [options] get-many TABLE KEY [KEY ...]
//   node client.js --target HOST:PORT [options] locate TABLE KEY
//   node client.js --target HOST:PORT [options] scan TABLE [--prefix P] [--limit N]
//       [--page-token T]
//   options: TLS (--tls, --ca-file F, and --cert-file F --key-file F for mutual TLS),
//       --token T, --deadline-ms N, --key-encoding utf8|base64|hex
//
// The protos are loaded at run time from the repository's proto/ directory, so this client
// always speaks the checked-in API; nothing is generated.
//
// get and get-many route directly, as the Python and Go smart clients do: they ask the
// target for the members (DiscoveryService.Members), compute each key's partition with the
// table's announced partitioner (routing.js), send each read straight to a holder that may
// answer it (--consistency any|active), and to the next one, then the target, on UNAVAILABLE.
// --via-target sends every read to the target instead (which forwards it).
//
// Keys are bytes: --key-encoding says how KEY and --prefix are written (default utf8 text).
// Output is JSON. Bytes are printed losslessly as base64, next to their UTF-8 decoding (null
// when the bytes are not valid UTF-8): `get` prints one object
//   {found, value, text, partition, offset, served_by, sent_to}
// `get-many` one such object per key, in the order given, each with {key, key_text} too;
// `locate` one object {table, partition, replicas} (the table's codecs, partitioner and
// partition count; the partition's holders, best first); and `scan` one line per row
// {key, key_text, value, text, partition}, then a last line {next_page_token} (empty when the
// range is exhausted). int64 fields (offsets, lag) are strings, as in the proto3 JSON mapping.
//
// On a gRPC error the status code name and message go to stderr ("NOT_FOUND: ...") and the
// exit status is 1; a usage error exits with 2.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { route } = require('./routing');

const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');
const DEFAULT_DEADLINE_MS = 10000;
const USAGE = `usage:
  node client.js --target HOST:PORT [options] get TABLE KEY
  node client.js --target HOST:PORT [options] get-many TABLE KEY [KEY ...]
  node client.js --target HOST:PORT [options] locate TABLE KEY
  node client.js --target HOST:PORT [options] scan TABLE [--prefix P] [--limit N] \\
      [--page-token T]
  node client.js --target HOST:PORT [options] watch TABLE [--prefix P] [--from P=OFFSET ...] \\
      [--snapshot] [--max-changes N]

  --target       host:port of any node of the deployment
  --tls          connect with TLS (server verified against the system roots or --ca-file)
  --ca-file      PEM CA that signed the server certificates (implies --tls)
  --cert-file    PEM client certificate, for mutual TLS (with --key-file; implies --tls)
  --key-file     PEM private key of --cert-file
  --token        sent as "authorization: Bearer T"
  --deadline-ms  deadline of the call, default ${DEFAULT_DEADLINE_MS}
  --key-encoding how KEY and --prefix are written: utf8 (default), base64 or hex
  --consistency  who may answer: any (default: owner, standby or replica) or active
  --via-target   send get and get-many to the target rather than straight to a holder
  --from         watch: resume partition P at OFFSET (repeatable)
  --snapshot     watch: first print the current rows
  --max-changes  watch: stop after N changes (default: at the deadline)`;

const KEY_ENCODINGS = ['utf8', 'base64', 'hex'];
const CONSISTENCIES = ['any', 'active'];

class UsageError extends Error {}

function loadServices() {
  // includeDirs lets imports resolve against proto/ (the proto path is the import path);
  // google/protobuf/*.proto (imported by discovery.proto) are bundled with protobufjs, which
  // proto-loader uses, so they need no include directory.
  const definition = protoLoader.loadSync(
    ['viewsvc/v1/table.proto', 'discovery/v1/discovery.proto'],
    { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true },
  );
  const loaded = grpc.loadPackageDefinition(definition);
  return {
    TableService: loaded.viewsvc.v1.TableService,
    DiscoveryService: loaded.discovery.v1.DiscoveryService,
  };
}

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      token: { type: 'string' },
      tls: { type: 'boolean' },
      'ca-file': { type: 'string' },
      'cert-file': { type: 'string' },
      'key-file': { type: 'string' },
      'deadline-ms': { type: 'string' },
      prefix: { type: 'string' },
      limit: { type: 'string' },
      'page-token': { type: 'string' },
      'key-encoding': { type: 'string' },
      consistency: { type: 'string' },
      'via-target': { type: 'boolean' },
      from: { type: 'string', multiple: true },
      snapshot: { type: 'boolean' },
      'max-changes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.target) throw new UsageError('--target HOST:PORT is required');
  const [command, ...rest] = positionals;
  const shape = COMMANDS[command];
  if (shape === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  if (shape.many ? rest.length < shape.args.length : rest.length !== shape.args.length) {
    throw new UsageError(`${command} takes ${shape.args.join(' ')}${shape.many ? ' ...' : ''}`);
  }
  if (command !== 'scan' && (values.limit || values['page-token'])) {
    throw new UsageError('--limit and --page-token are options of scan');
  }
  if (!['scan', 'watch'].includes(command) && values.prefix) {
    throw new UsageError('--prefix is an option of scan and watch');
  }
  if (command !== 'watch' && (values.from || values.snapshot || values['max-changes'])) {
    throw new UsageError('--from, --snapshot and --max-changes are options of watch');
  }
  const encoding = values['key-encoding'] ?? 'utf8';
  if (!KEY_ENCODINGS.includes(encoding)) {
    throw new UsageError(`--key-encoding must be one of ${KEY_ENCODINGS.join(', ')}`);
  }
  const consistency = values.consistency ?? 'any';
  if (!CONSISTENCIES.includes(consistency)) {
    throw new UsageError(`--consistency must be one of ${CONSISTENCIES.join(', ')}`);
  }
  if (Boolean(values['cert-file']) !== Boolean(values['key-file'])) {
    throw new UsageError('mutual TLS needs both --cert-file and --key-file');
  }
  return {
    command,
    credentials: credentials(values),
    table: rest[0],
    keys: rest.slice(1).map((key) => bytesOf('KEY', key, encoding)),
    target: values.target,
    token: values.token,
    // one deadline for the whole command: asking for the members and every read after it
    deadline: Date.now()
      + nonNegativeInt('--deadline-ms', values['deadline-ms'], DEFAULT_DEADLINE_MS),
    prefix: bytesOf('--prefix', values.prefix ?? '', encoding),
    limit: nonNegativeInt('--limit', values.limit, 0),
    pageToken: values['page-token'] ?? '',
    consistency,
    viaTarget: Boolean(values['via-target']),
    fromOffsets: offsetsOf(values.from ?? []),
    snapshot: Boolean(values.snapshot),
    maxChanges: nonNegativeInt('--max-changes', values['max-changes'], 0),
  };
}

function offsetsOf(pairs) {
  const offsets = {};
  for (const pair of pairs) {
    const match = /^(\d+)=(\d+)$/.exec(pair);
    if (match === null) throw new UsageError(`--from ${pair} is not PARTITION=OFFSET (e.g. 0=1234)`);
    offsets[Number(match[1])] = Number(match[2]);
  }
  return offsets;
}

// TLS and mutual TLS are settings, not code: PEM files are read here and handed to grpc-js.
function credentials(values) {
  const tls = values.tls || values['ca-file'] || values['cert-file'];
  if (!tls) return grpc.credentials.createInsecure();
  const read = (file) => {
    if (!file) return null;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${err.message}`);
    }
  };
  return grpc.credentials.createSsl(
    read(values['ca-file']),
    read(values['key-file']),
    read(values['cert-file']),
  );
}

const COMMANDS = {
  get: { args: ['TABLE', 'KEY'] },
  'get-many': { args: ['TABLE', 'KEY'], many: true },
  locate: { args: ['TABLE', 'KEY'] },
  scan: { args: ['TABLE'] },
  watch: { args: ['TABLE'] },
};

// Buffer.from ignores what it cannot decode, so the text is checked first: a typo must not
// become another key.
function bytesOf(name, written, encoding) {
  const valid = {
    utf8: () => true,
    hex: () => /^([0-9a-fA-F]{2})*$/.test(written),
    base64: () => /^[A-Za-z0-9+/]*={0,2}$/.test(written) && written.length % 4 === 0,
  }[encoding];
  if (!valid()) throw new UsageError(`${name} ${JSON.stringify(written)} is not ${encoding}`);
  return Buffer.from(written, encoding);
}

function nonNegativeInt(name, text, fallback) {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`${name} must be a non-negative integer`);
  return Number(text);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

function callArgs(options) {
  const metadata = new grpc.Metadata();
  if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
  return [metadata, { deadline: options.deadline }];
}

function result(response, sentTo) {
  return {
    found: response.found,
    value: response.value.toString('base64'),
    text: text(response.value),
    partition: response.partition,
    offset: response.offset,
    served_by: response.served_by,
    sent_to: sentTo,
  };
}

function readOptions(options) {
  return { consistency: `CONSISTENCY_${options.consistency.toUpperCase()}` };
}

// One client per endpoint, all closed at the end.
class Nodes {
  constructor(services, options) {
    this.services = services;
    this.options = options;
    this.clients = new Map();
  }

  table(endpoint) {
    if (!this.clients.has(endpoint)) {
      this.clients.set(endpoint, new this.services.TableService(endpoint, this.options.credentials));
    }
    return this.clients.get(endpoint);
  }

  // The members the target knows; none (route via the target) if it cannot tell.
  members() {
    if (this.options.viaTarget) return Promise.resolve([]);
    const discovery = new this.services.DiscoveryService(
      this.options.target, this.options.credentials,
    );
    return new Promise((resolve) => {
      discovery.Members({}, ...callArgs(this.options), (err, response) => {
        discovery.close();
        resolve(err ? [] : response.members);
      });
    });
  }

  close() {
    for (const client of this.clients.values()) client.close();
  }
}

function call(client, method, request, options) {
  return new Promise((resolve, reject) => {
    client[method](request, ...callArgs(options), (err, response) => {
      if (err) reject(err);
      else resolve(response);
    });
  });
}

// `method(request)` on each endpoint in turn until one answers; UNAVAILABLE passes the read
// on (reads are idempotent), any other error is the answer.
async function firstAnswer(nodes, endpoints, method, request, options) {
  let last;
  for (const endpoint of endpoints) {
    try {
      return [await call(nodes.table(endpoint), method, request, options), endpoint];
    } catch (err) {
      if (err.code !== grpc.status.UNAVAILABLE) throw err;
      last = err;
    }
  }
  throw last;
}

async function get(nodes, options) {
  const key = options.keys[0];
  const endpoints = route(
    await nodes.members(), options.table, key, options.consistency, options.target,
  );
  const request = { table: options.table, key, options: readOptions(options) };
  const [response, sentTo] = await firstAnswer(nodes, endpoints, 'Get', request, options);
  console.log(JSON.stringify(result(response, sentTo)));
}

// One GetMany per first endpoint, in parallel; keys whose node is unavailable go on to
// their next one.
async function getMany(nodes, options) {
  const members = await nodes.members();
  const routes = options.keys.map(
    (key) => route(members, options.table, key, options.consistency, options.target),
  );
  const answers = new Array(options.keys.length);
  let pending = options.keys.map((_, i) => i);
  while (pending.length > 0) {
    const groups = new Map();
    for (const i of pending) {
      const endpoint = routes[i].shift();
      if (!groups.has(endpoint)) groups.set(endpoint, []);
      groups.get(endpoint).push(i);
    }
    pending = [];
    await Promise.all([...groups].map(async ([endpoint, indexes]) => {
      const request = {
        table: options.table,
        keys: indexes.map((i) => options.keys[i]),
        options: readOptions(options),
      };
      try {
        const response = await call(nodes.table(endpoint), 'GetMany', request, options);
        indexes.forEach((i, j) => { answers[i] = result(response.results[j], endpoint); });
      } catch (err) {
        const retry = err.code === grpc.status.UNAVAILABLE && indexes.every((i) => routes[i].length);
        if (!retry) throw err;
        pending.push(...indexes);
      }
    }));
  }
  for (const [i, answer] of answers.entries()) {
    const key = options.keys[i];
    console.log(JSON.stringify({ key: key.toString('base64'), key_text: text(key), ...answer }));
  }
}

async function locate(nodes, options) {
  const request = { table: options.table, key: options.keys[0] };
  const response = await call(nodes.table(options.target), 'Locate', request, options);
  console.log(JSON.stringify({
    table: response.table,
    partition: response.partition,
    replicas: response.replicas,
  }));
}

function scan(nodes, options) {
  const client = nodes.table(options.target);
  const request = {
    table: options.table,
    prefix: options.prefix,
    limit: options.limit,
    page_token: options.pageToken,
  };
  return new Promise((resolve, reject) => {
    const call = client.Scan(request, ...callArgs(options));
    let nextPageToken = '';
    call.on('data', (response) => {
      for (const entry of response.entries) {
        console.log(JSON.stringify({
          key: entry.key.toString('base64'),
          key_text: text(entry.key),
          value: entry.value.toString('base64'),
          text: text(entry.value),
          partition: entry.partition,
        }));
      }
      nextPageToken = response.next_page_token;
    });
    // 'end' can come before or after 'status', and also after an error: the last line is
    // printed only once both have come and the status is OK
    let ended = false;
    let ok = false;
    const finish = () => {
      if (!ended || !ok) return;
      console.log(JSON.stringify({ next_page_token: nextPageToken }));
      resolve();
    };
    call.on('error', reject);
    call.on('end', () => {
      ended = true;
      finish();
    });
    call.on('status', (status) => {
      ok = status.code === grpc.status.OK;
      finish();
    });
  });
}

// Codes after which a watch goes on on another node, from its positions: the failover rule
// (UNAVAILABLE, CANCELLED by a draining server) and OUT_OF_RANGE (another replica may still
// have the changes).
const RESUMABLE = [grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.OUT_OF_RANGE];

// A watch that resumes by itself, the Python and Go clients' rule: per partition, the offset
// after the last change or the last position received; a change before it is dropped.
async function watch(nodes, options) {
  const positions = { ...options.fromOffsets };
  const members = await nodes.members();
  const endpoints = [...new Set([options.target, ...members
    .map((m) => m.announcement.endpoint).filter(Boolean)])];
  let received = 0;
  let failures = 0;
  for (let attempt = 0; Date.now() < options.deadline; attempt++) {
    const endpoint = endpoints[attempt % endpoints.length];
    const request = {
      table: options.table,
      prefix: options.prefix,
      from_offsets: positions,
      snapshot: options.snapshot,
      options: readOptions(options),
    };
    try {
      const done = await new Promise((resolve, reject) => {
        const call = nodes.table(endpoint).Watch(request, ...callArgs(options));
        call.on('data', (response) => {
          failures = 0;
          for (const row of response.rows) {
            if (row.partition in positions) continue;
            print({ ...entryOf(row), deleted: false, offset: '-1', snapshot: true });
          }
          for (const change of response.changes) {
            const offset = Number(change.offset);
            if (offset < (positions[change.partition] ?? 0)) continue;
            positions[change.partition] = offset + 1;
            print({ ...entryOf(change), deleted: change.deleted, offset: change.offset, snapshot: false });
            received += 1;
            if (options.maxChanges && received >= options.maxChanges) {
              call.cancel();
              resolve(true);
              return;
            }
          }
          for (const [partition, position] of Object.entries(response.positions)) {
            if (!(partition in positions) || Number(position) > positions[partition]) {
              positions[partition] = Number(position);
            }
          }
        });
        call.on('error', (err) => (err.code === grpc.status.CANCELLED && options.maxChanges
          && received >= options.maxChanges ? resolve(true) : reject(err)));
        call.on('end', () => resolve(false));
      });
      if (done) break;
    } catch (err) {
      if (err.code === grpc.status.DEADLINE_EXCEEDED) break;
      if (!RESUMABLE.includes(err.code) || ++failures > 3 * endpoints.length) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  console.log(JSON.stringify({ positions }));
}

function entryOf(item) {
  return {
    key: item.key.toString('base64'),
    key_text: text(item.key),
    value: item.value.toString('base64'),
    text: text(item.value),
    partition: item.partition,
  };
}

function print(line) {
  console.log(JSON.stringify(line));
}

async function main() {
  let options;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    // parseArgs throws TypeErrors with a code for unknown or malformed options
    if (!(err instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS'))) throw err;
    console.error(`${err.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const nodes = new Nodes(loadServices(), options);
  try {
    const run = { get, 'get-many': getMany, locate, scan, watch }[options.command];
    await run(nodes, options);
  } catch (err) {
    if (err.code === undefined) throw err;
    const name = Object.keys(grpc.status).find((key) => grpc.status[key] === err.code);
    console.error(`${name ?? err.code}: ${err.details}`);
    process.exitCode = 1;
  } finally {
    nodes.close();
  }
}

main();
