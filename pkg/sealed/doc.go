// Package sealed encrypts tenant tool secrets at rest: the signing secrets of
// tenant HTTP tools (whsec_…, which the platform must use to sign calls, so
// they cannot be hashed) and the auth headers of MCP servers.
//
// A Sealer turns a secret into a box, an opaque byte string that is safe to
// store, and back. Every box is bound to the tenant it was sealed for: opening
// it as another tenant fails, as does opening a box with one bit changed.
//
// Two schemes, told apart by the box's header so that a box sealed by one is
// refused, not misread, by the other:
//
//   - Local (the local platform): AES-256-GCM under a 32-byte key kept in a
//     file of the data directory (KeyFileName), created on first use with
//     mode 0600. Losing the file loses every secret sealed with it.
//   - KMS (AWS): envelope encryption. Each Seal asks KMS for a fresh AES-256
//     data key with the encryption context {"tenant_id": <tenant>}, seals the
//     secret with it, and keeps only the data key's KMS ciphertext in the box;
//     Open has KMS decrypt that ciphertext with the same context. The context
//     is authenticated by KMS, logged by CloudTrail with every Decrypt, and
//     available to key policy conditions (kms:EncryptionContext:tenant_id).
//
// Box layout (all integers big-endian):
//
//	local: 0x01 | 0x01 | key id (4) | nonce (12) | ciphertext and tag
//	kms:   0x01 | 0x02 | len(data key ciphertext) (2) | data key ciphertext | nonce (12) | ciphertext and tag
//
// The first byte is the format version, the second the scheme. The GCM
// additional data is a fixed label, the header up to the nonce, and the
// tenant id, so neither the header nor the tenant can be changed unnoticed.
//
// FromEnv picks the scheme: KMS when BULKHEAD_SEALING_KEY_ID names a key (the
// stack sets it on the functions that seal and open secrets), the key file in
// the data directory otherwise.
package sealed
