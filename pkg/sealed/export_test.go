package sealed

import "time"

// SetClock replaces the clock the data key cache expires entries by.
func SetClock(k *KMS, now func() time.Time) { k.now = now }

// CachedKeys is how many data keys k holds.
func CachedKeys(k *KMS) int { return k.cachedKeys() }
