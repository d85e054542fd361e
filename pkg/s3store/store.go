package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// S3API is the part of the S3 client this package uses, with the SDK's own
// signatures, so that *s3.Client (or a client with tenant-scoped
// credentials) can be passed as is.
type S3API interface {
	PutObject(ctx context.Context, params *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, params *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, params *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObjects(ctx context.Context, params *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	DeleteObject(ctx context.Context, params *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CreateBucket(ctx context.Context, params *s3.CreateBucketInput, optFns ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	HeadBucket(ctx context.Context, params *s3.HeadBucketInput, optFns ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// maxParallelGets bounds the turn objects read at once: a context window is
// read in about one round trip instead of one per turn, without opening an
// unbounded number of connections.
const maxParallelGets = 8

// Store is the transcript store of one bucket. It is safe for concurrent use.
type Store struct {
	client S3API
	bucket string
	creds  TenantCredentials
}

// New returns a store over bucket. It makes no request.
func New(client S3API, bucket string) *Store {
	return &Store{client: client, bucket: bucket}
}

// CreateBucket creates bucket, and succeeds if this account already has it.
// It is meant for the embedded server and development accounts; in AWS the
// bucket belongs to the CDK stack. It sends no location constraint, so
// against real S3 it only works in us-east-1.
func CreateBucket(ctx context.Context, client S3API, bucket string) error {
	const op = "s3store.CreateBucket"
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	switch {
	case err == nil, errors.As(err, &owned):
		return nil
	case errors.As(err, &exists):
		// Some servers (the embedded one among them) say "exists" for a
		// bucket we own; it is ours if we may use it.
		if _, herr := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); herr != nil {
			return translate(op, bucket, fmt.Errorf("bucket exists and is not usable: %w", herr))
		}
		return nil
	default:
		return translate(op, bucket, err)
	}
}

// Tenant returns the store scoped to one tenant: every key it builds is under
// that tenant's prefix, and no method takes a key from outside.
func (s *Store) Tenant(tenantID string) *TenantStore {
	return &TenantStore{store: s.scoped(tenantID), tenantID: tenantID}
}

// TenantStore is one tenant's view of the transcripts. It is safe for
// concurrent use.
type TenantStore struct {
	store    *Store
	tenantID string
	inline   InlineTurns
}

// InlineTurns holds the turns small enough to be kept outside objects (the
// platform keeps them in DynamoDB, written with the conversation head).
type InlineTurns interface {
	// Turns returns the turns first..last it holds, by turn number, as the
	// JSON message arrays an object would hold.
	Turns(ctx context.Context, conversationID string, first, last int64) (map[int64][]byte, error)
}

// WithInline returns the tenant's transcript store reading turns from src
// first and from their objects only where src has none: a turn too large to
// be inline, or one written before turns were kept inline.
func (t *TenantStore) WithInline(src InlineTurns) *TenantStore {
	c := *t
	c.inline = src
	return &c
}

// check refuses identifiers that cannot be part of a key.
func (t *TenantStore) check(op, conversationID string) error {
	if !validKeyPart(t.tenantID) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid tenant id"}
	}
	if !validKeyPart(conversationID) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid conversation id"}
	}
	return nil
}

// AppendTurn writes the messages of one turn (turns start at 1) and returns
// the object's size. The caller holds the conversation's claim in DynamoDB
// (one execution per conversation at a time, and the claim outlives the
// longest execution), so the only object that can already be at this key is
// an orphan left by an execution that died before it settled: it is
// replaced. A conditional put would instead wedge the conversation for ever
// behind such an orphan. Errors: Invalid, Unavailable.
func (t *TenantStore) AppendTurn(ctx context.Context, conversationID string, turn int64, msgs []bulkhead.Message) (int64, error) {
	const op = "s3store.AppendTurn"
	if err := t.check(op, conversationID); err != nil {
		return 0, err
	}
	if turn < 1 || turn > maxTurn {
		return 0, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("invalid turn %d", turn)}
	}
	if len(msgs) == 0 {
		return 0, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "a turn needs at least one message"}
	}
	body, err := json.Marshal(msgs)
	if err != nil {
		return 0, fmt.Errorf("%s: encode turn %d: %w", op, turn, err)
	}
	return t.putTurn(ctx, op, conversationID, turn, body)
}

// AppendTurnJSON is AppendTurn for a turn already encoded as the JSON array
// of its messages (the caller encoded it to tell its size). Errors: Invalid,
// Unavailable.
func (t *TenantStore) AppendTurnJSON(ctx context.Context, conversationID string, turn int64, body []byte) (int64, error) {
	const op = "s3store.AppendTurnJSON"
	if err := t.check(op, conversationID); err != nil {
		return 0, err
	}
	if turn < 1 || turn > maxTurn {
		return 0, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("invalid turn %d", turn)}
	}
	return t.putTurn(ctx, op, conversationID, turn, body)
}

// putTurn writes an encoded turn to its object and returns its size.
func (t *TenantStore) putTurn(ctx context.Context, op, conversationID string, turn int64, body []byte) (int64, error) {
	key := turnKey(t.tenantID, conversationID, turn)
	_, err := t.store.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(t.store.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	})
	if err = translate(op, key, err); err != nil {
		return 0, err
	}
	return int64(len(body)), nil
}

// RecentMessages returns the messages of the last window turns, oldest
// first, and the bytes read. turns is how many turns the conversation has,
// from its head, so that the read is a fixed number of GETs on known keys
// however long the conversation is. A turn at or below turns that is missing
// means the transcript contradicts its head: that is an Internal error naming
// the key, never a silently shorter context. Errors: Invalid, Internal,
// Unavailable.
func (t *TenantStore) RecentMessages(ctx context.Context, conversationID string, turns int64, window int) ([]bulkhead.Message, int64, error) {
	const op = "s3store.RecentMessages"
	if err := t.check(op, conversationID); err != nil {
		return nil, 0, err
	}
	if turns < 0 || turns > maxTurn {
		return nil, 0, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("invalid turn count %d", turns)}
	}
	if turns == 0 || window <= 0 {
		return nil, 0, nil
	}
	first := max(1, turns-int64(window)+1)
	perTurn, n, err := t.readTurns(ctx, op, conversationID, first, turns)
	if err != nil {
		return nil, n, err
	}
	var msgs []bulkhead.Message
	for _, m := range perTurn {
		msgs = append(msgs, m...)
	}
	return msgs, n, nil
}

// Messages returns one page of the transcript, oldest first: at most limit
// messages starting at from (the zero Position is the start), and the
// position of the next page, nil at the end. turns is how many turns the
// conversation has, from its head. limit <= 0 means bulkhead.DefaultPageSize,
// and limit is capped at bulkhead.MaxPageSize so a page is a bounded read.
// A page also stops before its messages, JSON-encoded, would pass
// bulkhead.MaxPageBytes (it always holds at least one), and the next
// position is exactly after the last message returned. from must be a
// position of this conversation: past its turns, or past the messages of its
// turn, it is Invalid. Errors: Invalid, Internal, Unavailable.
func (t *TenantStore) Messages(ctx context.Context, conversationID string, turns int64, from Position, limit int) ([]bulkhead.Message, *Position, error) {
	const op = "s3store.Messages"
	if err := t.check(op, conversationID); err != nil {
		return nil, nil, err
	}
	if turns < 0 || turns > maxTurn {
		return nil, nil, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("invalid turn count %d", turns)}
	}
	invalid := &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid cursor"}
	if from.Turn < 0 || from.Offset < 0 || (from.Turn == 0 && from.Offset != 0) || from.Turn > turns {
		return nil, nil, invalid
	}
	if limit <= 0 {
		limit = bulkhead.DefaultPageSize
	}
	limit = min(limit, bulkhead.MaxPageSize)

	turn, off := max(from.Turn, 1), from.Offset
	var msgs []bulkhead.Message
	size := 0
	for turn <= turns {
		need := limit - len(msgs)
		if need == 0 {
			return msgs, &Position{Turn: turn, Offset: off}, nil
		}
		// Turns are usually a user and an assistant message, so need/2 turns
		// usually fill the page; reading them together saves round trips and
		// over-reads a few objects at most when turns are longer.
		batch := min(int64(max((need+1)/2, 1)), int64(maxParallelGets), turns-turn+1)
		perTurn, _, err := t.readTurns(ctx, op, conversationID, turn, turn+batch-1)
		if err != nil {
			return nil, nil, err
		}
		for _, tm := range perTurn {
			if off > 0 && off >= len(tm) {
				return nil, nil, invalid
			}
			for ; off < len(tm); off++ {
				b, err := json.Marshal(tm[off])
				if err != nil {
					return nil, nil, fmt.Errorf("%s: encode turn %d: %w", op, turn, err)
				}
				if len(msgs) == limit || (len(msgs) > 0 && size+len(b) > bulkhead.MaxPageBytes) {
					return msgs, &Position{Turn: turn, Offset: off}, nil
				}
				msgs = append(msgs, tm[off])
				size += len(b)
			}
			turn, off = turn+1, 0
		}
	}
	return msgs, nil, nil
}

// readTurns reads turns first..last and returns their messages in turn
// order, with the bytes read: the inline ones in one request, the others
// from their objects, concurrently.
func (t *TenantStore) readTurns(ctx context.Context, op, conversationID string, first, last int64) ([][]bulkhead.Message, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	n := int(last - first + 1)
	perTurn := make([][]bulkhead.Message, n)
	sizes := make([]int64, n)
	inline := map[int64][]byte{}
	if t.inline != nil {
		var err error
		if inline, err = t.inline.Turns(ctx, conversationID, first, last); err != nil {
			return nil, 0, err
		}
	}
	var (
		mu       sync.Mutex
		firstErr error // the first failure in time: later ones may only be the cancellation it caused
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel() // the other reads are of no use now
	}
	decode := func(i int, turn int64, key string, body []byte) {
		if err := json.Unmarshal(body, &perTurn[i]); err != nil {
			fail(&bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: fmt.Sprintf("unreadable turn %d (%s)", turn, key), Err: err})
		}
	}
	sem := make(chan struct{}, maxParallelGets)
	var wg sync.WaitGroup
	for i := range n {
		turn := first + int64(i)
		if body, ok := inline[turn]; ok {
			sizes[i] = int64(len(body))
			decode(i, turn, "inline", body)
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			key := turnKey(t.tenantID, conversationID, turn)
			body, size, err := t.getObject(ctx, op, key)
			sizes[i] = size
			if bulkhead.IsCode(err, bulkhead.NotFound) {
				err = &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: fmt.Sprintf("transcript is missing turn %d (%s)", turn, key), Err: err}
			}
			if err != nil {
				fail(err)
				return
			}
			decode(i, turn, key, body)
		})
	}
	wg.Wait()

	var total int64
	for _, s := range sizes {
		total += s
	}
	if firstErr != nil {
		return nil, total, firstErr
	}
	return perTurn, total, nil
}

// getObject reads a whole object and returns its body and size.
func (t *TenantStore) getObject(ctx context.Context, op, key string) ([]byte, int64, error) {
	out, err := t.store.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(t.store.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return nil, 0, translate(op, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, int64(len(body)), translate(op, key, fmt.Errorf("read body: %w", err))
	}
	return body, int64(len(body)), nil
}

// DeleteConversation removes every object under the conversation's prefix
// and returns the bytes removed, so the tenant's storage counter can be
// decremented by exactly that. It is the one operation that lists, since it
// must also remove objects no head knows about (a turn written by an
// execution that failed before updating the head). Deleting a conversation
// with no objects removes 0 bytes and is not an error. On failure the bytes
// already removed are returned with the error. Errors: Invalid, Unavailable.
func (t *TenantStore) DeleteConversation(ctx context.Context, conversationID string) (int64, error) {
	const op = "s3store.DeleteConversation"
	if err := t.check(op, conversationID); err != nil {
		return 0, err
	}
	prefix := conversationPrefix(t.tenantID, conversationID)
	pages := s3.NewListObjectsV2Paginator(t.store.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(t.store.bucket),
		Prefix: aws.String(prefix),
	})
	var deleted int64
	for pages.HasMorePages() {
		// A page holds at most 1,000 keys, which is also DeleteObjects' limit.
		page, err := pages.NextPage(ctx)
		if err != nil {
			return deleted, translate(op, prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		sizes := make(map[string]int64, len(page.Contents))
		for _, obj := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: obj.Key})
			sizes[aws.ToString(obj.Key)] = aws.ToInt64(obj.Size)
		}
		out, err := t.store.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(t.store.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return deleted, translate(op, prefix, err)
		}
		// Quiet mode reports only the failures; everything else was removed.
		for _, e := range out.Errors {
			delete(sizes, aws.ToString(e.Key))
		}
		for _, size := range sizes {
			deleted += size
		}
		if len(out.Errors) > 0 {
			first := out.Errors[0]
			return deleted, translate(op, prefix, fmt.Errorf("%d objects not deleted, first %s: %s %s",
				len(out.Errors), aws.ToString(first.Key), aws.ToString(first.Code), aws.ToString(first.Message)))
		}
	}
	return deleted, nil
}
