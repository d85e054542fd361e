package server

import (
	"github.com/truora/minidyn/types"
)

// LoadItems fills a table with items as unconditional PutItem calls in the same
// order would, at a fraction of the cost for many items (see
// core.Table.LoadItems): it is meant for restoring a table from a copy of its
// items. The items are minidyn's own values, kept without copying, so that a
// caller decoding them from DynamoDB JSON builds each value once; the caller
// must not use them afterwards.
func (c *Client) LoadItems(tableName string, items []map[string]*types.Item) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	table, err := c.getTable(tableName)
	if err != nil {
		return err
	}

	if err := table.LoadItems(items); err != nil {
		return mapKnownError(err)
	}

	return nil
}

// LoadItems fills a table with items (see Client.LoadItems).
func (s *Server) LoadItems(tableName string, items []map[string]*types.Item) error {
	return s.client.LoadItems(tableName, items)
}
