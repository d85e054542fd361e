// Package embedded runs the DynamoDB- and S3-compatible servers (minidyn and
// gofakes3) that the local platform and the tests talk to through the real
// aws-sdk-go-v2 clients, on loopback only, in memory or persisted to files.
//
// # Durability
//
// S3 (with S3Options.Path) is a bolt file: every write is committed and flushed to
// disk before it is acknowledged, so nothing acknowledged is lost, even by kill -9
// (multipart uploads still in progress are the exception: their parts are in
// memory until completed).
//
// DynamoDB (with DynamoDBOptions.SnapshotPath) is minidyn, which lives in memory;
// this package persists it as a snapshot file and a write-ahead log (wal.go).
// Every request that changed something (PutItem, UpdateItem, DeleteItem,
// BatchWriteItem, TransactWriteItems and the table operations) is appended to the
// log, as the body the client sent, in the order the changes were made, and its
// answer waits until the record is fsynced: an acknowledged write survives kill -9
// and power loss. Writers that wait at the same time share one fsync. A request
// that changed nothing (a failed condition, a cancelled transaction) is not
// logged. A start loads the snapshot and replays the log after it through the
// same engine: each request meets the state it met the first time, so it has the
// outcome it had. A record torn by a crash at the end of the log was never
// acknowledged; it is cut off. Damage anywhere else refuses the start, so that
// acknowledged changes are never silently dropped.
//
// When the log passes DynamoDBOptions.CompactAfter (by default the larger of
// 8 MB and a quarter of the snapshot's size, so that rewriting the snapshot
// costs a bounded amount per logged byte and a start replays a bounded log), a new segment is started and a background goroutine
// rebuilds the data, from the previous snapshot and the closed segments, in a
// private engine, writes it as the new snapshot (a temporary file, fsync, rename,
// fsync of the directory) and deletes those segments. The live server is not
// read, so requests go on meanwhile; the rebuild holds a second copy of the data
// in memory while it runs. A snapshot names the last segment it holds, so a crash
// between writing it and deleting the segments replays nothing twice.
//
// If the log cannot be written (a full disk), the change is answered
// InternalServerError, and every later change is refused until a restart;
// reads still work. A read may see a change whose answer is still waiting for
// the disk; if the process dies then, that change is lost, but it was never
// acknowledged.
//
// Items that expire under TTL leave the data through logged requests (ttl.go):
// every DynamoDBOptions.TTLSweepEvery (15 seconds by default), or when SweepTTL
// is called, minidyn lists the keys of the items whose TTL attribute is a number
// of unix seconds before the clock's current second (DynamoDBOptions.Now), at
// the cost of the expired items, and each is deleted by a DeleteItem served by
// apply, conditioned on the attribute still being in the past, so that an item
// rewritten meanwhile stays. A deletion inside the engine, which the log would
// not see, would make replay diverge: a later conditional write may depend on
// the item being gone (attribute_not_exists). UpdateTimeToLive is logged and
// kept in the snapshot's table log like the other table operations, so the
// setting survives restarts.
//
// # Differences from DynamoDB worth knowing
//
// Table operations (CreateTable, UpdateTable, DeleteTable, DescribeTable) are
// serialised with all other requests here, because minidyn serves them without
// its lock; tables may therefore be created while traffic runs. ListTables,
// DescribeTable (always ACTIVE, so the SDK's TableExists waiter succeeds),
// DescribeTimeToLive and UpdateTimeToLive are answered here (tableops.go), and
// any other operation minidyn lacks answers UnknownOperationException in
// DynamoDB's JSON shape. A TTL setting takes effect at once (DynamoDB takes up to
// an hour), and expired items are gone within TTLSweepEvery (DynamoDB takes up
// to a few days, and skips expiry times more than five years old; here they
// expire too). minidyn encodes an empty list or
// map attribute as {}, which the SDK decodes as BOOL false: store an absent
// attribute rather than an empty collection.
//
// # DynamoDB's rules held here
//
// Requests from the network are held to rules of DynamoDB that minidyn does not
// enforce (rules.go), with DynamoDB's error types and messages, so that tests
// catch what AWS would refuse:
//
//   - Items over 400 KB (sized as DynamoDB documents it) are refused by PutItem,
//     BatchWriteItem and a transaction's Put (ValidationException), and an update
//     that would make an item pass the limit by UpdateItem (ValidationException)
//     and by a transaction's Update (TransactionCanceledException with a
//     ValidationError reason). Update sizes are measured: the update is first
//     run on a private copy of the current item (exact unless another write to
//     the same item lands between that copy and the update).
//   - TransactWriteItems of more than 100 actions or over 4 MB in aggregate is
//     refused (minidyn already refuses the batch and TransactGetItems limits).
//   - ClientRequestToken: a successful TransactWriteItems is remembered for ten
//     minutes (DynamoDBOptions.Now is the clock); the same token and parameters
//     answer its response again without applying anything, other parameters
//     answer IdempotentParameterMismatchException. A failed call is not
//     remembered. Tokens live in memory: a restart forgets them.
//   - A Query whose ExclusiveStartKey lies outside its key condition is refused
//     (ValidationException). minidyn, with a FilterExpression and a Limit, may
//     answer a LastEvaluatedKey outside the key condition; the query is then
//     continued from it, so that no answer carries such a cursor.
//
// LoseResponses and LoseTokenResponses make committed writes answer 500, so that
// tests can prove that an SDK retry of them is harmless.
//
// Not emulated: capacity and throttling, item collection and index size
// limits, TransactionConflict between concurrent transactions, and the 16 MB
// request limit of batch operations.
package embedded
