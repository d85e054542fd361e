package ssrf

import (
	"context"
	"net"
)

// SetConnect replaces the final connection of g's dials, so a test can see
// which address a checked dial would have connected to. checked is false for
// allow-listed pairs.
func SetConnect(g *Guard, f func(ctx context.Context, network, address string, checked bool) (net.Conn, error)) {
	g.connect = f
}

// ControlCheck is the dialer's Control function.
var ControlCheck = controlCheck
