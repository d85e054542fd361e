package server

import (
	"errors"

	"github.com/truora/minidyn/core"
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

// NewLoader returns a loader for a table, for a caller that prepares items on
// several goroutines (core.Loader.Prepare) before storing them all with
// LoadEntries: the way to fill a large table fastest. Nothing may change the
// table's schema in between.
func (c *Client) NewLoader(tableName string) (*core.Loader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	table, err := c.getTable(tableName)
	if err != nil {
		return nil, err
	}

	return table.NewLoader(), nil
}

// LoadEntries stores the items a loader prepared (see core.Loader.Load).
func (c *Client) LoadEntries(l *core.Loader, entries []core.LoadEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if err := l.Load(entries); err != nil {
		return mapKnownError(err)
	}

	return nil
}

// SetBulk turns bulk mode on or off for every table, including tables created
// while it is on (see core.Table.SetBulk): for replaying a log of writes, each
// in time that does not grow with the table, after which turning it off sorts
// what the writes left once. Only writes may be sent while it is on.
func (c *Client) SetBulk(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.bulk = on

	var errs []error

	for _, t := range c.tables {
		if err := t.SetBulk(on); err != nil {
			errs = append(errs, mapKnownError(err))
		}
	}

	return errors.Join(errs...)
}
