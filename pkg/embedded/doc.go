// Package embedded runs the DynamoDB- and S3-compatible servers (minidyn and
// gofakes3) that the local platform and the tests talk to through the real
// aws-sdk-go-v2 clients, on loopback only, in memory or persisted to files.
//
// # Durability
//
// S3 (with S3Options.Path) is a bolt file: every write is committed and flushed to
// disk before it is acknowledged, so nothing acknowledged is lost, even by kill -9.
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
// previous snapshot or the new one.
//
// What a snapshot restores: each table as it was created (and updated with
// UpdateTable) through the server, and its items. minidyn has no TTL, so there is
// no TTL setting to restore; its DescribeTable answers an empty TableStatus, so the
// SDK's TableExists waiter never succeeds against it.
package embedded
