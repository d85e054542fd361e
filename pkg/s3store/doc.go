// Package s3store keeps conversation transcripts in S3, one immutable object
// per turn, so that a turn costs the same number of requests and bytes however
// long the conversation grows.
//
// Every object of a tenant lives under tenants/<tenant_id>/, and a
// conversation's objects under tenants/<tenant_id>/conversations/<conversation_id>/;
// a turn is turns/<turn as %010d>.json there, holding a JSON array of the
// turn's messages. The number of turns is not kept here: it lives in the
// conversation's head in DynamoDB, which is why reads take it as an argument
// and never LIST. Only deleting a conversation lists its prefix.
//
// Errors are *bulkhead.Error: NotFound for a missing object, Conflict for a
// turn that was already written, Invalid for a malformed identifier or
// cursor, Internal for a transcript that contradicts its head (a missing or
// unreadable turn), and Unavailable when S3 fails.
package s3store
