"""gRPC reads: Get (bare-grpcio ceiling, local, forwarded, smart client), GetMany and Scan.

    python -m bench.grpc_reads [--brokers B | --kafka] [--seconds 5] [--rounds 3]
        [--keys 100000] [--partitions 4] [--record]

The broker: the Tansu dev broker started for the run by default, ``--kafka`` a real Apache
Kafka started for the run (``goka.localkafka``, one KRaft node on this machine), or
``--brokers B`` an external one; the records and the JSON name it. ``--keys`` keys (values
of ``--value-bytes`` bytes) are written straight to a fresh compacted table topic with the
murmur2 partitioner; then five server OS processes start, each on its own port on 127.0.0.1:

- **view**: ``python -m viewsvc serve-view`` holding every partition (LMDB under a temporary
  directory), announcing on a fresh discovery topic (heartbeat 0.5 s);
- **router**: ``python -m viewsvc route`` on the same discovery topic, holding nothing;
- **ceiling**: ``bench.grpc_reads.reference_servers``: a bare grpcio server (a thread pool of
  ``Limits().max_concurrent_rpcs`` threads, as TableServer, nothing else) whose
  TableService.Get only looks the key up in the view's own LMDB files (opened read-only with
  the lmdb package) and builds the GetResponse;
- **configured**: the ceiling's handler on a server set up as TableServer's is
  (``viewsvc.server.grpc_server.bounded_server``: the concurrent-call limit, request size and
  streams per connection, plus health and reflection; ``ceiling_cfg``): what the server
  costs around the handler, apart from the handler;
- **forwarder**: the same bare server whose Get only passes the request on to the ceiling
  (a blocking call with a timeout and the forwarded-by metadata, as a node forwards): the
  least one Python gRPC hop adds, the reference for the forwarded figures (``ceiling_fwd``).

The load runs in this process, in threads: concurrency C is C threads issuing blocking calls
back to back on one shared channel (the smart client's own channel for the smart client).
Threads, not futures or asyncio, because the smart client is a blocking API: every variant is
then driven by the same code. The Get variants send the same pre-built requests for uniformly
random keys: **ceiling** and **local** (the view, holding the key) directly, **forwarded**
through the router (one hop to the view), **smart** through ``viewsvc.Client`` watching the
view's membership (it hashes the key and calls the view directly). **get_many** sends
GetMany(``--batch`` random keys) to the view, **get_many_ceiling** the same to the ceiling
(whose GetMany only hashes each key, reads it from LMDB and adds a result); **scan** reads
the whole table from the view in one Scan stream, back to back.

With Go on the PATH, the same Gets also come from a Go process (``clients/go/cmd/loadgen``,
built for the run; goroutines in place of threads): **ceiling_go**, a plain stub on the
ceiling, and **smart_go**, the Go smart client (``clients/go/viewsvc``) through the view's
membership. Next to **ceiling** and **smart** they show how much of the Python figures is the
client's cost. They run after the interleaved Python variants of their concurrency, each in
one piece, and their ``cli CPU`` is the Go process's.

Each measurement runs ``--seconds`` after ``--warmup`` seconds. The Get variants of one
concurrency are interleaved in turns of ``--slice`` seconds (ceiling, ceiling_cfg,
ceiling_fwd, local, forwarded, smart, ceiling, ...), so a change in the machine's other load
hits each one alike; GetMany and Scan follow. The figures are the medians over ``--rounds``
(req/s, p50, p99 each). ``srv_cpu_us`` is the CPU time the server processes (router + view
for forwarded) spent per request, from /proc (clock ticks), ``cli_cpu`` the share of one core
this process used (near 100% would mean the load generator, not the server, set the pace)
and ``other_cpu`` the cores busy with anything else (idle servers, the broker, other users of
the machine: above ~0.1 the figures are disturbed). With ``--record`` a dated section is added
to the grpc_reads section of bench/RESULTS.md. The last line printed is JSON.

The targets (``results.TARGETS``): local Get at least 90% of the ceiling's req/s; forwarded Get
p50 at most 1.1x the bare forwarder's p50 in the same run (what a Python hop can reach: a
bound on our routing, not on the cost of one more RPC on two shared cores); GetMany and Scan
throughput floors.

The modules: ``reference_servers`` (the ceiling and the bare forwarder, run as processes),
``servers`` (starting and stopping the server processes), ``load`` (the data, the load driver
and the variants) and ``results`` (targets, verdicts and the record); ``__main__`` runs them.
"""
