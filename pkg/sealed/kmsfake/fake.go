// Package kmsfake is a fake AWS KMS: a real HTTP server speaking the AWS JSON
// 1.1 protocol that checks SigV4 signatures and answers GenerateDataKey and
// Decrypt as KMS does. Data keys really are encrypted, with a master key the
// fake keeps per KMS key, and the encryption context is authenticated: Decrypt
// with another context, another key or an altered blob answers
// InvalidCiphertextException or IncorrectKeyException. Tests drive it through
// the real SDK client.
package kmsfake

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
)

// Fail answers one request with an AWS error: Status, error type Type.
type Fail struct {
	Status int
	Type   string
}

// Request is one request the fake received (after its signature checked).
type Request struct {
	// Op is the operation: "GenerateDataKey" or "Decrypt".
	Op                string
	KeyID             string
	EncryptionContext map[string]string
}

// Server is the fake KMS.
type Server struct {
	srv               *httptest.Server
	region, account   string
	accessKey, secret string
	mu                sync.Mutex
	keys              map[string]cipher.AEAD // by key ARN
	aliases           map[string]string      // alias/name → key ARN
	failures          []Fail
	requests          []Request
	calls             map[string]int
	nextKey           int
	firstKeyARN       string
}

// account is the account id in the fake's key ARNs.
const account = "111122223333"

// New starts a fake accepting requests signed with the given credentials for
// the region. It holds one key (KeyARN), also reachable as alias/bulkhead-sealing.
func New(region, accessKeyID, secretAccessKey string) *Server {
	s := &Server{region: region, account: account, accessKey: accessKeyID, secret: secretAccessKey,
		keys: map[string]cipher.AEAD{}, aliases: map[string]string{}, calls: map[string]int{}}
	s.firstKeyARN = s.CreateKey()
	s.aliases["alias/bulkhead-sealing"] = s.firstKeyARN
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// KeyARN is the ARN of the key the fake starts with.
func (s *Server) KeyARN() string { return s.firstKeyARN }

// CreateKey adds a key with a master key of its own and returns its ARN.
func (s *Server) CreateKey() string {
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		panic(err)
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextKey++
	arn := fmt.Sprintf("arn:aws:kms:%s:%s:key/00000000-0000-4000-8000-%012d", s.region, s.account, s.nextKey)
	s.keys[arn] = aead
	return arn
}

// FailNext queues failures, consumed one per request in order before any
// request is served.
func (s *Server) FailNext(fails ...Fail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fails...)
}

// Calls returns how many signed requests of an operation the fake received
// (failed ones included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// request is the part of a GenerateDataKey or Decrypt body the fake reads.
type request struct {
	KeyID             string            `json:"KeyId"`
	KeySpec           string            `json:"KeySpec"`
	NumberOfBytes     *int              `json:"NumberOfBytes"`
	CiphertextBlob    []byte            `json:"CiphertextBlob"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "unreadable body")
		return
	}
	if typ, msg := s.verify(r, body); typ != "" {
		writeError(w, http.StatusBadRequest, typ, msg)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok || (op != "GenerateDataKey" && op != "Decrypt") {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "no such operation")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, http.StatusBadRequest, "SerializationException", "Content-Type "+ct)
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "malformed request body")
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.requests = append(s.requests, Request{Op: op, KeyID: req.KeyID, EncryptionContext: req.EncryptionContext})
	var fail *Fail
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()
	if fail != nil {
		writeError(w, fail.Status, fail.Type, "injected failure")
		return
	}
	if op == "GenerateDataKey" {
		s.generateDataKey(w, req)
		return
	}
	s.decrypt(w, req)
}

// resolve finds a key by ARN, bare key id, alias name or alias ARN.
func (s *Server) resolve(id string) (string, cipher.AEAD, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if arn, ok := s.aliases[id]; ok {
		id = arn
	}
	if name, ok := strings.CutPrefix(id, fmt.Sprintf("arn:aws:kms:%s:%s:", s.region, s.account)); ok && strings.HasPrefix(name, "alias/") {
		id = s.aliases[name]
	}
	for arn, aead := range s.keys {
		if arn == id || strings.HasSuffix(arn, ":key/"+id) {
			return arn, aead, true
		}
	}
	return "", nil, false
}

// contextAAD is the encryption context in a canonical form (sorted keys), the
// additional data that binds it to the encrypted data key.
func contextAAD(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%d:%s=%d:%s;", len(k), k, len(ec[k]), ec[k])
	}
	return b.Bytes()
}

// blob layout: "FKMS" | uint16 len(arn) | arn | nonce | sealed data key.
const blobMagic = "FKMS"

func (s *Server) generateDataKey(w http.ResponseWriter, req request) {
	arn, aead, ok := s.resolve(req.KeyID)
	if !ok {
		writeError(w, http.StatusBadRequest, "NotFoundException", "Key '"+req.KeyID+"' does not exist")
		return
	}
	n := 0
	switch {
	case req.KeySpec != "" && req.NumberOfBytes != nil:
		writeError(w, http.StatusBadRequest, "ValidationException", "Please specify either number of bytes or key spec.")
		return
	case req.KeySpec == "AES_256":
		n = 32
	case req.KeySpec == "AES_128":
		n = 16
	case req.NumberOfBytes != nil && *req.NumberOfBytes >= 1 && *req.NumberOfBytes <= 1024:
		n = *req.NumberOfBytes
	default:
		writeError(w, http.StatusBadRequest, "ValidationException", "KeySpec or NumberOfBytes is required")
		return
	}
	key := make([]byte, n)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(key); err != nil {
		panic(err)
	}
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	blob := []byte(blobMagic)
	blob = binary.BigEndian.AppendUint16(blob, uint16(len(arn)))
	blob = append(blob, arn...)
	blob = append(blob, nonce...)
	blob = aead.Seal(blob, nonce, key, contextAAD(req.EncryptionContext))
	writeJSON(w, map[string]any{"KeyId": arn, "CiphertextBlob": blob, "Plaintext": key})
}

func (s *Server) decrypt(w http.ResponseWriter, req request) {
	invalid := func() { writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "") }
	rest, ok := bytes.CutPrefix(req.CiphertextBlob, []byte(blobMagic))
	if !ok || len(rest) < 2 {
		invalid()
		return
	}
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+n {
		invalid()
		return
	}
	arn, aead, ok := s.resolve(string(rest[2 : 2+n]))
	if !ok {
		invalid()
		return
	}
	if req.KeyID != "" {
		named, _, ok := s.resolve(req.KeyID)
		if !ok {
			writeError(w, http.StatusBadRequest, "NotFoundException", "Key '"+req.KeyID+"' does not exist")
			return
		}
		if named != arn {
			writeError(w, http.StatusBadRequest, "IncorrectKeyException",
				"The key ID in the request does not identify a KMS key that can perform this operation.")
			return
		}
	}
	sealed := rest[2+n:]
	if len(sealed) < aead.NonceSize() {
		invalid()
		return
	}
	key, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], contextAAD(req.EncryptionContext))
	if err != nil {
		invalid()
		return
	}
	writeJSON(w, map[string]any{"KeyId": arn, "Plaintext": key, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

// verify checks the request's SigV4 signature for the service kms, the
// fake's region and its credentials.
func (s *Server) verify(r *http.Request, body []byte) (string, string) {
	return awsfake.VerifySigV4(r, body, awsfake.Credentials{AccessKey: s.accessKey, SecretKey: s.secret, Region: s.region, Service: "kms"})
}
