package bulkhead

import (
	"sort"
	"time"
)

// AgentUsage is one agent's part of a month.
type AgentUsage struct {
	AgentID      string `json:"agent_id"`
	Executions   int64  `json:"executions"`
	Tokens       int64  `json:"tokens"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	ModelCost    Micros `json:"-"`
}

// Invoice is a closed month's bill for one tenant. It is computed from the
// month's usage records alone, so its totals trace back to the executions.
type Invoice struct {
	TenantID string
	Month    string
	// Tier is the tier billed: the highest held during the month.
	Tier      TierName
	TiersHeld []TierName
	Bill
	InputTokens  int64
	OutputTokens int64
	Executions   int64
	// ModelCost is what the platform paid the providers (the price table).
	ModelCost Micros
	Agents    []AgentUsage
	ClosedAt  time.Time
}

// Margin is the bill less the model cost.
func (i Invoice) Margin() Micros { return i.Total - i.ModelCost }

// BilledTier is the tier a month is billed at: the most expensive tier the
// tenant held during it (current when it held no other). Tier changes are not
// prorated by day: an upgrade takes effect at once and is billed for the
// month, and a downgrade just before the month ends does not lower the bill
// for a month used at the higher tier.
func BilledTier(held []TierName, current TierName) Tier {
	best, _ := LookupTier(current)
	if len(held) == 0 {
		return best
	}
	best = Tier{}
	for _, n := range held {
		if t, ok := LookupTier(n); ok && t.BaseFee >= best.BaseFee {
			best = t
		}
	}
	if best.Name == "" {
		best, _ = LookupTier(current)
	}
	return best
}

// ComputeInvoice bills a month's usage records under the billed tier.
func ComputeInvoice(tenantID, month string, tier Tier, held []TierName, records []Execution, closedAt time.Time) Invoice {
	inv := Invoice{TenantID: tenantID, Month: month, Tier: tier.Name, TiersHeld: held, ClosedAt: closedAt}
	byAgent := map[string]*AgentUsage{}
	var tokens int64
	for _, e := range records {
		a := byAgent[e.AgentID]
		if a == nil {
			a = &AgentUsage{AgentID: e.AgentID}
			byAgent[e.AgentID] = a
		}
		a.Executions++
		a.InputTokens += e.InputTokens
		a.OutputTokens += e.OutputTokens
		a.Tokens += e.InputTokens + e.OutputTokens
		a.ModelCost += e.Cost
		inv.InputTokens += e.InputTokens
		inv.OutputTokens += e.OutputTokens
		inv.ModelCost += e.Cost
		inv.Executions++
		tokens += e.InputTokens + e.OutputTokens
	}
	for _, a := range byAgent {
		inv.Agents = append(inv.Agents, *a)
	}
	sort.Slice(inv.Agents, func(i, j int) bool { return inv.Agents[i].AgentID < inv.Agents[j].AgentID })
	inv.Bill = ComputeBill(tier, month, tokens)
	return inv
}

// MonthBounds returns the first instant of a month ("2026-11") and of the next.
func MonthBounds(month string) (start, end time.Time, err error) {
	start, err = time.Parse("2006-01", month)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return start, start.AddDate(0, 1, 0), nil
}
