// testdata/vectors.json, shared by the tests of every language: run with `node --test`.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { partitionOf, route } = require('../routing');

const vectors = JSON.parse(fs.readFileSync(
  path.resolve(__dirname, '..', '..', '..', 'testdata', 'vectors.json'), 'utf8',
));

test('partitioners match the vectors', () => {
  assert.ok(vectors.partitions.length > 0);
  for (const c of vectors.partitions) {
    const key = Buffer.from(c.key_hex, 'hex');
    for (const name of ['murmur2', 'fnv1a']) {
      assert.equal(partitionOf(name, key, c.partition_count), c[name],
        `${name}(${c.key_hex}, ${c.partition_count})`);
    }
  }
});

test('the string and int64 encodings read back', () => {
  for (const c of vectors.codecs.string) {
    assert.equal(Buffer.from(c.encoded_hex, 'hex').toString('utf8'), c.value);
  }
  for (const c of vectors.codecs.int64) {
    assert.equal(Buffer.from(c.encoded_hex, 'hex').toString('ascii'), c.value); // decimal text
  }
});

const holding = (partition, kind, state, lag) => ({
  partition, kind: `PARTITION_KIND_${kind.toUpperCase()}`,
  state: `PARTITION_STATE_${state.toUpperCase()}`, lag: String(lag),
});
const member = (id, generation, ...partitions) => ({
  announcement: {
    member_id: id, endpoint: `${id}:1`, generation: String(generation), sequence: '1',
    tables: [{ topic: 't', partitioner: 'fnv1a', partition_count: 4, partitions }],
  },
});

test('a read goes to the eligible holders, then the given node', () => {
  const partition = partitionOf('fnv1a', Buffer.from('k'), 4);
  const members = [
    member('old', 1, holding(partition, 'active', 'running', 0)),
    member('owner', 2, holding(partition, 'active', 'running', 0)),
    member('replica', 0, holding(partition, 'replica', 'running', 3)),
    member('recovering', 0, holding(partition, 'replica', 'recovering', 0)),
  ];
  assert.deepEqual(route(members, 't', Buffer.from('k'), 'any', 'router:1'),
    ['owner:1', 'replica:1', 'router:1']);
  assert.deepEqual(route(members, 't', Buffer.from('k'), 'active', 'router:1'),
    ['owner:1', 'router:1']);
  assert.deepEqual(route(members, 'other', Buffer.from('k'), 'any', 'router:1'), ['router:1']);
});
