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
// this package persists it as a snapshot file. A graceful Close loses nothing:
// every request acknowledged before Close returned is in the final snapshot. A
// crash (kill -9, power loss) loses at most the writes acknowledged since the last
// snapshot that reached the disk, that is, those of the last SnapshotEvery plus the
// time it takes to write a snapshot. A snapshot is always consistent: it is taken
// while no request is being served, so it never holds half of a TransactWriteItems,
// or a later write without an earlier one. The file is replaced atomically (write a
// temporary file, fsync, rename, fsync the directory), so a crash leaves either the
// previous snapshot or the new one. A snapshot that fails (a full disk) is logged
// and tried again every SnapshotEvery; until one succeeds, a crash loses more.
//
// Taking a snapshot pauses requests for the time minidyn takes to scan every table
// and encode its items (about 200 ms for 20,000 small items); writing the file
// does not. Snapshots restore each table as it was created (and changed with
// UpdateTable) through the server, and its items as minidyn stores them.
//
// # Differences from DynamoDB worth knowing
//
// Table operations (CreateTable, UpdateTable, DeleteTable, DescribeTable) are
// serialised with all other requests here, because minidyn serves them without
// its lock; tables may therefore be created while traffic runs. ListTables,
// DescribeTable (always ACTIVE, so the SDK's TableExists waiter succeeds),
// DescribeTimeToLive and UpdateTimeToLive are answered here (tableops.go), and
// any other operation minidyn lacks answers UnknownOperationException in
// DynamoDB's JSON shape. The TTL setting is kept, but expired items are not
// deleted yet, and the setting lives in memory (the platform turns it on at
// every start). minidyn encodes an empty list or
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
// Not emulated: TTL, capacity and throttling, item collection and index size
// limits, TransactionConflict between concurrent transactions, and the 16 MB
// request limit of batch operations.
package embedded
