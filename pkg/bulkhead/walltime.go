package bulkhead

import "time"

// MaxWallTimeCeiling is the longest wall time any tier lets an execution run:
// how long a host stopping gracefully must wait for every execution to end.
func MaxWallTimeCeiling() time.Duration {
	var d time.Duration
	for _, t := range Tiers() {
		d = max(d, t.Ceiling.MaxWallTime)
	}
	return d
}
