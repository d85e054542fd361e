package bulkhead

// Bill is a month's charge for a tenant under its tier's pricing.
type Bill struct {
	Tier           TierName
	Month          string
	BaseFee        Micros
	TokensIncluded int64
	TokensUsed     int64
	OverageTokens  int64
	// OverageFee is rounded to cents, half up, once, at this line.
	OverageFee Micros
	Total      Micros
}

// ComputeBill prices a month's tokens under a tier: the base fee, plus the
// tokens above the included amount pro rata per token at the tier's price per
// 1,000 (not per started 1,000), rounded half up to cents at the overage line.
func ComputeBill(t Tier, month string, tokensUsed int64) Bill {
	b := Bill{Tier: t.Name, Month: month, BaseFee: t.BaseFee, TokensIncluded: t.IncludedTokens, TokensUsed: tokensUsed}
	if tokensUsed > t.IncludedTokens {
		b.OverageTokens = tokensUsed - t.IncludedTokens
		// Exact in micro-dollars before rounding: tokens * (price per 1K) / 1000.
		exact := (Micros(b.OverageTokens)*t.OveragePer1K + 500) / 1000
		b.OverageFee = exact.RoundToCents()
	}
	b.Total = b.BaseFee + b.OverageFee
	return b
}
