// Direct routing, as the Python and Go smart clients do it: the key's partition by the
// partitioner the table announces (murmur2 or fnv1a), then its holders best first (the
// active owner of the highest generation, then running before recovering, least lag first),
// those that may answer the read first, then the node the client was given.
'use strict';

// Kafka's default partitioner (the Java producer's): (murmur2(key) & 0x7fffffff) % n.
function murmur2(key, partitions) {
  const m = 0x5bd1e995;
  const length = key.length;
  let h = (0x9747b28c ^ length) >>> 0;
  const mul = (a, b) => Math.imul(a, b) >>> 0;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    let k = (key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)) >>> 0;
    k = mul(k, m);
    k = (k ^ (k >>> 24)) >>> 0;
    k = mul(k, m);
    h = (mul(h, m) ^ k) >>> 0;
  }
  switch (length - i) {
    case 3:
      h = (h ^ (key[i + 2] << 16)) >>> 0;
    // falls through
    case 2:
      h = (h ^ (key[i + 1] << 8)) >>> 0;
    // falls through
    case 1:
      h = (h ^ key[i]) >>> 0;
      h = mul(h, m);
      break;
    default:
      break;
  }
  h = (h ^ (h >>> 13)) >>> 0;
  h = mul(h, m);
  h = (h ^ (h >>> 15)) >>> 0;
  return (h & 0x7fffffff) % partitions;
}

// Goka's (Sarama's hash partitioner with FNV-1a): abs(int32(fnv1a32(key))) % n.
function fnv1a(key, partitions) {
  let h = 0x811c9dc5;
  for (const byte of key) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return Math.abs(h | 0) % partitions;
}

const PARTITIONERS = { murmur2, fnv1a };

function partitionOf(partitioner, key, partitions) {
  const partition = PARTITIONERS[partitioner];
  if (partition === undefined) throw new Error(`unknown partitioner ${partitioner}`);
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new Error(`partition count must be >= 1, got ${partitions}`);
  }
  return partition(key, partitions);
}

const lagOrder = (lag) => (lag < 0 ? 2 ** 62 : lag);

// The members holding `partition` of `table`, best first. Members are as
// DiscoveryService.Members returns them (proto-loader with longs as strings, enums as names).
function owners(members, table, partition) {
  let active = null;
  const others = [];
  for (const { announcement: a } of members) {
    for (const t of a.tables) {
      if (t.topic !== table) continue;
      for (const p of t.partitions) {
        if (p.partition !== partition) continue;
        const owner = {
          member_id: a.member_id,
          endpoint: a.endpoint,
          kind: p.kind.replace('PARTITION_KIND_', '').toLowerCase(),
          state: p.state.replace('PARTITION_STATE_', '').toLowerCase(),
          lag: Number(p.lag),
          generation: BigInt(a.generation),
          sequence: BigInt(a.sequence),
        };
        if (owner.kind !== 'active') others.push(owner);
        else if (active === null || owner.generation > active.generation
          || (owner.generation === active.generation && owner.sequence > active.sequence)) {
          active = owner;
        }
      }
    }
  }
  others.sort((x, y) => ((x.state === 'running') !== (y.state === 'running')
    ? (x.state === 'running' ? -1 : 1)
    : lagOrder(x.lag) - lagOrder(y.lag)));
  return active === null ? others : [active, ...others];
}

// The endpoints to send a read of `key` to, in order: the eligible holders of its partition
// (running, with an endpoint, the active owner only for ACTIVE; least lag first), then
// `fallback` (a node that forwards any read). Only `fallback` when no member announces the
// table with a partitioner this client knows.
function route(members, table, key, consistency, fallback) {
  const info = members.flatMap((m) => m.announcement.tables).find((t) => t.topic === table);
  if (info === undefined || PARTITIONERS[info.partitioner] === undefined) return [fallback];
  const partition = partitionOf(info.partitioner, key, info.partition_count);
  const eligible = owners(members, table, partition)
    .filter((o) => o.endpoint && o.state === 'running'
      && (consistency !== 'active' || o.kind === 'active'))
    .sort((x, y) => lagOrder(x.lag) - lagOrder(y.lag));
  return [...new Set([...eligible.map((o) => o.endpoint), fallback])];
}

module.exports = { fnv1a, murmur2, owners, partitionOf, route };
