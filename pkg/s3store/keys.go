package s3store

import "fmt"

// maxTurn is the largest turn number whose key still sorts correctly with
// the zero-padded %010d format.
const maxTurn = 9_999_999_999

// tenantPrefix is the prefix of every object a tenant owns; IAM session
// policies scope a tenant's credentials to exactly this prefix.
func tenantPrefix(tenantID string) string {
	return "tenants/" + tenantID + "/"
}

// conversationPrefix is the prefix of every object of one conversation.
func conversationPrefix(tenantID, conversationID string) string {
	return tenantPrefix(tenantID) + "conversations/" + conversationID + "/"
}

// turnKey is the key of one turn's object. The zero padding makes keys sort
// in turn order, which keeps a listing of the prefix in transcript order.
func turnKey(tenantID, conversationID string, turn int64) string {
	return conversationPrefix(tenantID, conversationID) + fmt.Sprintf("turns/%010d.json", turn)
}

// validKeyPart reports whether an identifier may be used in a key. Refusing
// "/" and "." keeps one conversation's prefix from containing another's
// ("c" would otherwise be a prefix of "c/x") and keys free of path tricks.
func validKeyPart(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
